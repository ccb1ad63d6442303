//! Calendar words for what clients read — letters and invoices — in
//! Canada's two official languages. French names are lower case, as French
//! writes them inside a sentence.

use chrono::Weekday;

/// January..December.
const MONTHS_EN: [&str; 12] = [
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
/// janvier..décembre.
const MONTHS_FR: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];
/// Monday..Sunday.
const WEEKDAYS_EN: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
/// lundi..dimanche.
const WEEKDAYS_FR: [&str; 7] = [
    "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche",
];

/// The name of month `month0` (0 = January; out of range reads as
/// December), in French or English.
pub fn month_name(month0: u32, french: bool) -> &'static str {
    let index = usize::try_from(month0).unwrap_or(11).min(11);
    if french {
        MONTHS_FR[index]
    } else {
        MONTHS_EN[index]
    }
}

/// The name of `weekday`, in French or English.
pub fn weekday_name(weekday: Weekday, french: bool) -> &'static str {
    let index = weekday.num_days_from_monday() as usize;
    if french {
        WEEKDAYS_FR[index]
    } else {
        WEEKDAYS_EN[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_and_weekdays_are_named_in_either_language() {
        assert_eq!(month_name(0, false), "January");
        assert_eq!(month_name(7, true), "août");
        assert_eq!(month_name(99, true), "décembre");
        assert_eq!(weekday_name(Weekday::Wed, false), "Wednesday");
        assert_eq!(weekday_name(Weekday::Sun, true), "dimanche");
    }
}
