select account_id, orders * 3 as balance, 'v3' as version_built from {{ ref('accounts') }}
