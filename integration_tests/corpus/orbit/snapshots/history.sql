{# two snapshots in one file: a path: selection would take both #}
{% snapshot orders_history %}
{{ config(unique_key='order_id', strategy='check', check_cols=['customer_id']) }}
select * from {{ ref('orders') }}
{% endsnapshot %}

{% snapshot countries_history %}
{{ config(unique_key='country_code', strategy='check', check_cols='all') }}
select * from {{ ref('countries') }}
{% endsnapshot %}
