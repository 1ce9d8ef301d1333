select count(*) as n from {{ ref('invoices') }}
