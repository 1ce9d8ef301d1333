-- a folder named like the project: `--select orbit.orbit` matches this model too
select * from {{ ref('orbit') }}
