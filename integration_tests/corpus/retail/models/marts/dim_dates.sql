-- the installed package retail_kit has a model named dim_dates too
select cast(range as date) as date_day from range(date '2024-01-01', date '2024-03-01', interval 1 day)
