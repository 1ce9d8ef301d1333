select account_id, orders * 1 as balance, 'v1' as version_built from {{ ref('accounts') }}
