-- a test with no parents at all: handoff schedules it nowhere and says so in the plan's notes
select 1 as failure where false
