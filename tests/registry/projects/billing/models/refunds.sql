select * from {{ source('shop', 'orders') }} where amount < 0
