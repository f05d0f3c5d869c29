//! Business hours of a queue: a time zone and, per weekday, the intervals it is open. Kept as
//! JSON in the store (`{"timezone": "Europe/Berlin", "days": {"mon": [["09:00", "17:00"]]}}`);
//! a day without intervals is closed. Time zones come from jiff (system zoneinfo, else its
//! bundled copy), so daylight-saving changes follow the zone's rules.

use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const DAYS: [(&str, Weekday); 7] = [
    ("mon", Weekday::Monday),
    ("tue", Weekday::Tuesday),
    ("wed", Weekday::Wednesday),
    ("thu", Weekday::Thursday),
    ("fri", Weekday::Friday),
    ("sat", Weekday::Saturday),
    ("sun", Weekday::Sunday),
];

/// Business hours as an admin writes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoursSpec {
    /// An IANA time zone name, e.g. `Europe/Berlin`.
    pub timezone: String,
    /// `mon` .. `sun` -> open intervals `["HH:MM", "HH:MM"]` (end after start; `24:00` allowed).
    #[serde(default)]
    pub days: BTreeMap<String, Vec<[String; 2]>>,
}

/// Validated business hours, ready to answer "open now?".
#[derive(Debug, Clone)]
pub struct Hours {
    tz: TimeZone,
    /// Per weekday (Monday = 0): open intervals in minutes since midnight, end exclusive.
    days: [Vec<(u16, u16)>; 7],
}

fn minutes(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return None;
    }
    Some(h * 60 + m)
}

impl Hours {
    /// Parses and checks a spec; the error says what is wrong, for the admin.
    pub fn from_spec(spec: &HoursSpec) -> Result<Hours, String> {
        let tz = TimeZone::get(&spec.timezone)
            .map_err(|_| format!("unknown time zone `{}`", spec.timezone))?;
        let mut days: [Vec<(u16, u16)>; 7] = Default::default();
        for (name, intervals) in &spec.days {
            let Some(i) = DAYS.iter().position(|(d, _)| d == name) else {
                return Err(format!("unknown day `{name}` (use mon, tue, ... sun)"));
            };
            if intervals.len() > 8 {
                return Err(format!("{name}: at most 8 intervals"));
            }
            for [from, to] in intervals {
                let (Some(a), Some(b)) = (minutes(from), minutes(to)) else {
                    return Err(format!("{name}: times must be HH:MM (00:00 to 24:00)"));
                };
                if a >= b {
                    return Err(format!("{name}: {from} is not before {to}"));
                }
                days[i].push((a, b));
            }
        }
        Ok(Hours { tz, days })
    }

    /// Parses the stored JSON ("" = no business hours: None).
    pub fn from_json(json: &str) -> Result<Option<Hours>, String> {
        if json.trim().is_empty() {
            return Ok(None);
        }
        let spec: HoursSpec = serde_json::from_str(json).map_err(|e| e.to_string())?;
        Hours::from_spec(&spec).map(Some)
    }

    /// Whether the queue is within its hours at `now_ms` (Unix ms).
    pub fn open_at(&self, now_ms: i64) -> bool {
        let Ok(ts) = Timestamp::from_millisecond(now_ms) else {
            return false;
        };
        let z = ts.to_zoned_datetime(self.tz.clone());
        let day = DAYS
            .iter()
            .position(|(_, w)| *w == z.weekday())
            .unwrap_or(0);
        let m = z.hour() as u16 * 60 + z.minute() as u16;
        self.days[day].iter().any(|(a, b)| *a <= m && m < *b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(rfc3339: &str) -> i64 {
        rfc3339.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn open_follows_the_zone_and_its_daylight_saving() {
        let h = Hours::from_json(
            r#"{"timezone":"Europe/Berlin","days":{"mon":[["09:00","17:00"]],"sat":[["10:00","24:00"]]}}"#,
        )
        .unwrap()
        .unwrap();
        // Monday 2026-01-05: 09:30 in Berlin is 08:30 UTC (winter, UTC+1).
        assert!(h.open_at(ms("2026-01-05T08:30:00Z")));
        assert!(!h.open_at(ms("2026-01-05T07:30:00Z")));
        // Monday 2026-07-06: summer (UTC+2): 16:30 UTC is 18:30 in Berlin, closed.
        assert!(!h.open_at(ms("2026-07-06T15:30:00Z")));
        assert!(h.open_at(ms("2026-07-06T14:30:00Z")));
        // Saturday until midnight; Sunday closed.
        assert!(h.open_at(ms("2026-01-10T22:59:00Z")));
        assert!(!h.open_at(ms("2026-01-10T23:00:00Z")));
        assert_eq!(Hours::from_json("").unwrap().map(|_| ()), None);
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        for (json, says) in [
            (r#"{"timezone":"Mars/Base","days":{}}"#, "time zone"),
            (r#"{"timezone":"UTC","days":{"moon":[]}}"#, "unknown day"),
            (
                r#"{"timezone":"UTC","days":{"mon":[["9:00","17:00"]]}}"#,
                "HH:MM",
            ),
            (
                r#"{"timezone":"UTC","days":{"mon":[["17:00","09:00"]]}}"#,
                "not before",
            ),
            (
                r#"{"timezone":"UTC","days":{"mon":[["24:30","25:00"]]}}"#,
                "HH:MM",
            ),
        ] {
            let e = Hours::from_json(json).unwrap_err();
            assert!(e.contains(says), "{json}: {e}");
        }
    }
}
