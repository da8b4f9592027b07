//! How a room's messages read: grouped by sender, split by day, with their full date and
//! time on hover and their links clickable. The rules are plain functions, tested natively;
//! [`Timeline`] renders them.

use std::collections::BTreeMap;

use confab_shared::native::ChatMessage;
use leptos::prelude::*;

use crate::room::Avatar;

/// Messages from one sender closer together than this are shown as one group.
pub const GROUP_GAP_SECS: i64 = 5 * 60;

/// A local calendar day, as the reader's clock has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Day {
    pub year: i32,
    /// 1–12.
    pub month: u32,
    pub day: u32,
}

/// A local date and time, broken down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalTime {
    pub day: Day,
    /// 0 (Sunday) to 6.
    pub weekday: u32,
    pub hour: u32,
    pub minute: u32,
}

/// One line of the message list.
#[derive(Clone, Debug, PartialEq)]
pub enum Line {
    /// Where a new day starts.
    DayBreak { day: Day, label: String },
    /// A message; `continued` when it follows one of the same sender's within
    /// [`GROUP_GAP_SECS`] on the same day, so its name and avatar are not repeated.
    Message {
        message: ChatMessage,
        continued: bool,
    },
}

impl Line {
    /// Stable across renders: a message changes key only when its grouping changes.
    pub fn key(&self) -> String {
        match self {
            Self::DayBreak { day, .. } => format!("d{}-{}-{}", day.year, day.month, day.day),
            Self::Message { message, continued } => format!("m{}-{continued}", message.seq),
        }
    }
}

/// The lines of `messages` (oldest first), with day breaks; `local` gives a Unix time's
/// local date and time, `today` the reader's day.
pub fn lines(
    messages: &BTreeMap<u64, ChatMessage>,
    local: impl Fn(i64) -> LocalTime,
    today: Day,
) -> Vec<Line> {
    let mut lines = Vec::with_capacity(messages.len() + 4);
    let mut previous: Option<(&ChatMessage, Day)> = None;
    for message in messages.values() {
        let at = local(message.ts);
        let new_day = previous.is_none_or(|(_, day)| day != at.day);
        if new_day {
            lines.push(Line::DayBreak {
                day: at.day,
                label: day_label(at, today),
            });
        }
        let continued = !new_day
            && previous.is_some_and(|(before, _)| {
                before.from == message.from && message.ts - before.ts < GROUP_GAP_SECS
            });
        lines.push(Line::Message {
            message: message.clone(),
            continued,
        });
        previous = Some((message, at.day));
    }
    lines
}

const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
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

/// "Today", "Yesterday", else "Friday 27 November 2026".
pub fn day_label(at: LocalTime, today: Day) -> String {
    if at.day == today {
        return "Today".into();
    }
    if at.day == previous_day(today) {
        return "Yesterday".into();
    }
    format!(
        "{} {} {} {}",
        WEEKDAYS[at.weekday as usize % 7],
        at.day.day,
        MONTHS[(at.day.month as usize + 11) % 12],
        at.day.year
    )
}

/// "Friday 27 November 2026, 09:05": what hovering a message shows.
pub fn full_time(at: LocalTime) -> String {
    format!(
        "{} {} {} {}, {:02}:{:02}",
        WEEKDAYS[at.weekday as usize % 7],
        at.day.day,
        MONTHS[(at.day.month as usize + 11) % 12],
        at.day.year,
        at.hour,
        at.minute
    )
}

fn previous_day(day: Day) -> Day {
    if day.day > 1 {
        return Day {
            day: day.day - 1,
            ..day
        };
    }
    let (year, month) = if day.month == 1 {
        (day.year - 1, 12)
    } else {
        (day.year, day.month - 1)
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    Day {
        year,
        month,
        day: days,
    }
}

/// A piece of a message's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    Text(String),
    /// An `http://` or `https://` URL; nothing else becomes a link.
    Link(String),
}

/// Splits text into plain text and links. A link runs from `http://` or `https://` to the
/// next whitespace, less trailing punctuation that usually ends the sentence around it.
pub fn linkify(text: &str) -> Vec<Segment> {
    let mut segments = Vec::new();
    let mut rest = text;
    while let Some(start) = find_url_start(rest) {
        let (before, from_url) = rest.split_at(start);
        let end = from_url.find(char::is_whitespace).unwrap_or(from_url.len());
        let candidate = &from_url[..end];
        let url = candidate.trim_end_matches(['.', ',', '!', '?', ';', ':', ')', '"', '\'']);
        let scheme_only = url.ends_with("://");
        if !before.is_empty() {
            push_text(&mut segments, before);
        }
        if scheme_only {
            push_text(&mut segments, url);
        } else {
            segments.push(Segment::Link(url.to_owned()));
        }
        rest = &from_url[url.len()..];
    }
    if !rest.is_empty() {
        push_text(&mut segments, rest);
    }
    segments
}

fn find_url_start(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    match (lower.find("http://"), lower.find("https://")) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn push_text(segments: &mut Vec<Segment>, text: &str) {
    if let Some(Segment::Text(last)) = segments.last_mut() {
        last.push_str(text);
    } else {
        segments.push(Segment::Text(text.to_owned()));
    }
}

/// A Unix time in the reader's time zone.
pub fn local_time(unix_secs: i64) -> LocalTime {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(unix_secs as f64 * 1000.0));
    LocalTime {
        day: Day {
            year: i32::try_from(date.get_full_year()).unwrap_or(1970),
            month: date.get_month() + 1,
            day: date.get_date(),
        },
        weekday: date.get_day(),
        hour: date.get_hours(),
        minute: date.get_minutes(),
    }
}

/// The reader's day now.
pub fn today() -> Day {
    local_time((js_sys::Date::now() / 1000.0) as i64).day
}

/// One line of the list: a day break, or a message (its name, avatar and time only when it
/// starts a group; its full date and time on hover).
#[component]
pub fn TimelineLine(line: Line, own: bool) -> impl IntoView {
    match line {
        Line::DayBreak { label, .. } => view! {
            <li class="day-break" role="separator"><span>{label}</span></li>
        }
        .into_any(),
        Line::Message { message, continued } => {
            let at = local_time(message.ts);
            let time = format!("{:02}:{:02}", at.hour, at.minute);
            let text = linkify(&message.message)
                .into_iter()
                .map(|segment| match segment {
                    Segment::Text(text) => text.into_any(),
                    Segment::Link(url) => {
                        let href = url.clone();
                        view! { <a href=href target="_blank" rel="noopener noreferrer">{url}</a> }
                            .into_any()
                    }
                })
                .collect::<Vec<_>>();
            view! {
                <li class="message" class:own=own class:continued=continued
                    data-seq=message.seq data-id=message.id.clone() title=full_time(at)>
                    {if continued {
                        view! { <span class="avatar-space" aria-hidden="true"></span> }.into_any()
                    } else {
                        view! { <Avatar url=message.image_url.clone() name=message.username.clone() /> }.into_any()
                    }}
                    <div>
                        {(!continued).then(|| view! {
                            <p class="meta"><strong>{message.username.clone()}</strong>" "<time>{time}</time></p>
                        })}
                        <p class="text">{text}</p>
                    </div>
                </li>
            }
            .into_any()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(seq: u64, from: &str, ts: i64) -> ChatMessage {
        ChatMessage {
            code: "ROOM22".into(),
            from: from.into(),
            message: format!("m{seq}"),
            ts,
            username: from.into(),
            image_url: String::new(),
            id: format!("id{seq}"),
            seq,
        }
    }

    /// A clock where each Unix day is a calendar day of November 2026 (day 1 is a Sunday).
    fn clock(ts: i64) -> LocalTime {
        let day = u32::try_from(ts / 86_400).unwrap();
        LocalTime {
            day: Day {
                year: 2026,
                month: 11,
                day: day + 1,
            },
            weekday: day % 7,
            hour: u32::try_from(ts % 86_400 / 3600).unwrap(),
            minute: u32::try_from(ts % 3600 / 60).unwrap(),
        }
    }

    fn shape(lines: &[Line]) -> Vec<String> {
        lines
            .iter()
            .map(|line| match line {
                Line::DayBreak { label, .. } => format!("-- {label}"),
                Line::Message { message, continued } => {
                    format!("{}{}", if *continued { "  " } else { "" }, message.message)
                }
            })
            .collect()
    }

    #[test]
    fn messages_group_by_sender_within_five_minutes_and_split_by_day() {
        let today = Day {
            year: 2026,
            month: 11,
            day: 29,
        };
        let day = |n: i64| (n - 1) * 86_400;
        let all: BTreeMap<u64, ChatMessage> = [
            message(1, "ana", day(27) + 9 * 3600),
            message(2, "ana", day(27) + 9 * 3600 + 60),
            message(3, "ana", day(27) + 9 * 3600 + 60 + GROUP_GAP_SECS),
            message(4, "ben", day(28) + 10),
            message(5, "ben", day(29) + 10),
            message(6, "ana", day(29) + 20),
            message(7, "ben", day(29) + 30),
        ]
        .into_iter()
        .map(|m| (m.seq, m))
        .collect();
        assert_eq!(
            shape(&lines(&all, clock, today)),
            [
                "-- Friday 27 November 2026",
                "m1",
                "  m2",
                "m3",
                "-- Yesterday",
                "m4",
                "-- Today",
                "m5",
                "m6",
                "m7",
            ]
        );
        assert!(lines(&BTreeMap::new(), clock, today).is_empty());
    }

    #[test]
    fn yesterday_crosses_months_and_years() {
        let at = |year, month, day| LocalTime {
            day: Day { year, month, day },
            weekday: 0,
            hour: 0,
            minute: 0,
        };
        let today = |year, month, day| Day { year, month, day };
        assert_eq!(day_label(at(2026, 2, 28), today(2026, 3, 1)), "Yesterday");
        assert_eq!(day_label(at(2024, 2, 29), today(2024, 3, 1)), "Yesterday");
        assert_eq!(day_label(at(2025, 12, 31), today(2026, 1, 1)), "Yesterday");
        assert_eq!(day_label(at(2026, 4, 30), today(2026, 5, 1)), "Yesterday");
        assert_eq!(
            day_label(at(2026, 4, 29), today(2026, 5, 1)),
            "Sunday 29 April 2026"
        );
        assert_eq!(
            full_time(clock(86_400 * 2 + 9 * 3600 + 5 * 60)),
            "Tuesday 3 November 2026, 09:05"
        );
    }

    #[test]
    fn only_http_and_https_urls_become_links() {
        use Segment::{Link, Text};
        let text = |s: &str| Text(s.to_owned());
        let link = |s: &str| Link(s.to_owned());
        assert_eq!(linkify("no links here"), [text("no links here")]);
        assert_eq!(
            linkify("see https://example.com/a?b=1, then http://x.io."),
            [
                text("see "),
                link("https://example.com/a?b=1"),
                text(", then "),
                link("http://x.io"),
                text("."),
            ]
        );
        assert_eq!(
            linkify("(HTTPS://Example.com/Path)"),
            [text("("), link("HTTPS://Example.com/Path"), text(")")]
        );
        for unsafe_text in [
            "javascript:alert(1)",
            "data:text/html,<b>x</b>",
            "ftp://files.example",
            "see http:// nothing",
        ] {
            assert!(
                linkify(unsafe_text).iter().all(|s| matches!(s, Text(_))),
                "{unsafe_text}"
            );
        }
        assert_eq!(linkify("https://"), [text("https://")]);
        assert_eq!(
            linkify("a https://x.io\nb"),
            [text("a "), link("https://x.io"), text("\nb")]
        );
    }
}
