-- a dotted model name: other domains read it as model 'sales.daily'
select ordered_on, sum(quantity) as quantity, sum(amount_cents) as amount_cents
from {{ ref('fct_sales') }} group by ordered_on
