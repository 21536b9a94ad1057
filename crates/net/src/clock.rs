//! The server's local wall clock, read here so that the state machines only ever see it injected.

use chrono::Timelike;
use tutti_jam::TimeOfDay;

/// The local time of day (for chat time stamps).
pub fn local_time_of_day() -> TimeOfDay {
    let now = chrono::Local::now();
    TimeOfDay { hour: now.hour() as u8, minute: now.minute() as u8, second: now.second() as u8 }
}

/// `YYYY-MM-DD HH:MM:SS` in local time, as Jamulus' connection log writes it.
pub fn local_timestamp() -> String {
    chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string()
}
