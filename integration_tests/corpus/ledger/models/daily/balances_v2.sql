select account_id, orders * 2 as balance, 'v2' as version_built from {{ ref('accounts') }}
