select account_id, balance from {{ ref('balances', v=3) }}
