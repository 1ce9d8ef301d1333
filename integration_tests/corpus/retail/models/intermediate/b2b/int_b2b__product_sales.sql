select p.product_id, p.category, coalesce(sum(i.quantity * p.price_cents), 0) as revenue_cents
from {{ ref('stg_b2b__products') }} p
left join {{ ref('stg_b2b__order_items') }} i on i.product_id = p.product_id
group by all
