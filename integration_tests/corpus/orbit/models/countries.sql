-- reads retail's public seed country_codes
select country_code, country_name from {{ source('retail', 'country_codes') }}
