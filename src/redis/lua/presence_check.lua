-- A timer that would declare a visitor gone fired (`grace:V`): is the visitor still connected
-- to a live node? (`presence_decide` in presence_common.lua.)
-- KEYS[1] P{r}:here:X
-- ARGV[1] rp  ARGV[2] party (v:ID)  ARGV[3] timer member  ARGV[4] now  ARGV[5] node TTL ms
-- ARGV[6] outage gap ms  ARGV[7] settle ms  ARGV[8] re-arm ms while present
-- Returns 'gone', 'present' or 'settling' (the last two set the timer again).
return presence_decide(ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]),
  tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]))
