select * from {{ source('billing', 'refunds') }}
