//! The time `strftime_now(format)` prints: a calendar date and time, a clock that gives it
//! (the system clock in UTC by default, or a fixed time for reproducible prompts and
//! tests) and the `strftime` directives templates use.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// A calendar date and time of day (proleptic Gregorian, no time zone).
///
/// ```
/// use ziglama_model::chat::DateTime;
/// let t = DateTime::new(2024, 3, 9, 13, 7, 5).unwrap();
/// assert_eq!(t.strftime("%d %b %Y, %A %H:%M:%S"), "09 Mar 2024, Saturday 13:07:05");
/// assert_eq!(DateTime::from_unix_seconds(0), DateTime::new(1970, 1, 1, 0, 0, 0).unwrap());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    year: i32,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
}

/// Something that tells the time `strftime_now` prints.
pub type Clock = Arc<dyn Fn() -> DateTime + Send + Sync>;

/// The default clock: the system time, in UTC.
pub(crate) fn system_clock() -> Clock {
    Arc::new(|| {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        DateTime::from_unix_seconds(secs)
    })
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

fn is_leap(year: i32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i32, month: u8, day: u8) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

impl DateTime {
    /// A date and time, or `None` if a field is out of range (month 1-12, day within the
    /// month, hour 0-23, minute and second 0-59).
    pub fn new(year: i32, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> Option<Self> {
        let valid = (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month)
            && hour < 24
            && minute < 60
            && second < 60;
        valid.then_some(Self {
            year,
            month,
            day,
            hour,
            minute,
            second,
        })
    }

    /// The UTC date and time `secs` seconds after 1970-01-01 00:00:00.
    pub fn from_unix_seconds(secs: i64) -> Self {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        // Hinnant's `civil_from_days`.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        Self {
            year,
            month,
            day,
            hour: (rem / 3600) as u8,
            minute: (rem / 60 % 60) as u8,
            second: (rem % 60) as u8,
        }
    }

    /// Day of the week, 0 = Monday.
    fn weekday(&self) -> usize {
        // 1970-01-01 was a Thursday (3).
        (days_from_civil(self.year, self.month, self.day) + 3).rem_euclid(7) as usize
    }

    /// Day of the year, 1-based.
    fn day_of_year(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day) - days_from_civil(self.year, 1, 1) + 1
    }

    /// Formats the time as C's (and Python's) `strftime` does in the C locale, for the
    /// directives `%Y %y %C %m %d %e %j %H %I %M %S %p %B %b %h %A %a %w %u %F %T %D %R %n %t
    /// %%` and glibc's `-` flag (`%-d`: no padding); any other directive is copied as it
    /// is.
    pub fn strftime(&self, format: &str) -> String {
        let mut out = String::new();
        let mut chars = format.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let Some(mut d) = chars.next() else {
                out.push('%');
                break;
            };
            // glibc's `-` flag: no padding (`%-d` is `9`, not `09`).
            let unpadded = d == '-';
            if unpadded {
                match chars.next() {
                    Some(next) => d = next,
                    None => {
                        out.push_str("%-");
                        break;
                    }
                }
            }
            let start = out.len();
            let hour12 = match self.hour % 12 {
                0 => 12,
                h => h,
            };
            match d {
                'Y' => out.push_str(&self.year.to_string()),
                'y' => out.push_str(&format!("{:02}", self.year.rem_euclid(100))),
                'C' => out.push_str(&format!("{:02}", self.year.div_euclid(100))),
                'm' => out.push_str(&format!("{:02}", self.month)),
                'd' => out.push_str(&format!("{:02}", self.day)),
                'e' => out.push_str(&format!("{:2}", self.day)),
                'j' => out.push_str(&format!("{:03}", self.day_of_year())),
                'H' => out.push_str(&format!("{:02}", self.hour)),
                'I' => out.push_str(&format!("{hour12:02}")),
                'M' => out.push_str(&format!("{:02}", self.minute)),
                'S' => out.push_str(&format!("{:02}", self.second)),
                'p' => out.push_str(if self.hour < 12 { "AM" } else { "PM" }),
                'B' => out.push_str(MONTHS[usize::from(self.month - 1)]),
                'b' | 'h' => out.push_str(&MONTHS[usize::from(self.month - 1)][..3]),
                'A' => out.push_str(WEEKDAYS[self.weekday()]),
                'a' => out.push_str(&WEEKDAYS[self.weekday()][..3]),
                'w' => out.push_str(&((self.weekday() + 1) % 7).to_string()),
                'u' => out.push_str(&(self.weekday() + 1).to_string()),
                'F' => out.push_str(&self.strftime("%Y-%m-%d")),
                'T' => out.push_str(&self.strftime("%H:%M:%S")),
                'D' => out.push_str(&self.strftime("%m/%d/%y")),
                'R' => out.push_str(&self.strftime("%H:%M")),
                'n' => out.push('\n'),
                't' => out.push('\t'),
                '%' => out.push('%'),
                other => {
                    out.push('%');
                    if unpadded {
                        out.push('-');
                    }
                    out.push(other);
                }
            }
            if unpadded && "dmHIMSjye".contains(d) {
                let field = out[start..].trim_start_matches([' ', '0']).to_owned();
                out.truncate(start);
                out.push_str(if field.is_empty() { "0" } else { &field });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_round_trip_through_the_calendar() {
        for secs in [0i64, 951_782_400, 1_709_989_625, 4_102_444_799, -86_400] {
            let t = DateTime::from_unix_seconds(secs);
            let back = days_from_civil(t.year, t.month, t.day) * 86_400
                + i64::from(t.hour) * 3600
                + i64::from(t.minute) * 60
                + i64::from(t.second);
            assert_eq!(back, secs);
        }
        // 2000-02-29 00:00:00 UTC.
        assert_eq!(
            DateTime::from_unix_seconds(951_782_400),
            DateTime::new(2000, 2, 29, 0, 0, 0).unwrap()
        );
    }

    #[test]
    fn strftime_directives() {
        let t = DateTime::new(2024, 3, 9, 13, 7, 5).unwrap();
        assert_eq!(t.strftime("%Y-%m-%d %H:%M:%S"), "2024-03-09 13:07:05");
        assert_eq!(t.strftime("%d %B %Y"), "09 March 2024");
        assert_eq!(
            t.strftime("%a %b %e %I%p %j %w %u %y %%"),
            "Sat Mar  9 01PM 069 6 6 24 %"
        );
        assert_eq!(t.strftime("%Q%"), "%Q%");
        assert_eq!(
            t.strftime("%-d/%-m %-H:%-M:%-S %-j %-Q"),
            "9/3 13:7:5 69 %-Q"
        );
        assert!(DateTime::new(2023, 2, 29, 0, 0, 0).is_none());
    }
}
