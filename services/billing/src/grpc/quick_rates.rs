//! Quick-method rates' requests and responses: decode and validate, encode.

use fitflow_api::text::{TextKind, check_text, required};
use fitflow_api::time::to_timestamp;
use fitflow_auth::Principal;
use fitflow_error::{ApiError, Violations};
use fitflow_proto::billing as pb;
use rust_decimal::Decimal;
use tonic::Status;

use super::{MAX_SOURCE, date_in, date_out, done, reject};
use crate::TaxTable;
use crate::quick_rates::NewQuickRate;
use crate::repo::QuickRateVersion;

/// The stored form of a region.
fn region_in(value: i32) -> Option<&'static str> {
    match pb::QuickMethodRegion::try_from(value) {
        Ok(pb::QuickMethodRegion::NonParticipating) => Some("NP"),
        Ok(pb::QuickMethodRegion::On) => Some("ON"),
        Ok(pb::QuickMethodRegion::Nb) => Some("NB"),
        Ok(pb::QuickMethodRegion::Nl) => Some("NL"),
        Ok(pb::QuickMethodRegion::Ns) => Some("NS"),
        Ok(pb::QuickMethodRegion::Pe) => Some("PE"),
        Ok(pb::QuickMethodRegion::Qc) => Some("QC"),
        Ok(pb::QuickMethodRegion::Unspecified) | Err(_) => None,
    }
}

fn region_out(stored: &str) -> pb::QuickMethodRegion {
    match stored {
        "NP" => pb::QuickMethodRegion::NonParticipating,
        "ON" => pb::QuickMethodRegion::On,
        "NB" => pb::QuickMethodRegion::Nb,
        "NL" => pb::QuickMethodRegion::Nl,
        "NS" => pb::QuickMethodRegion::Ns,
        "PE" => pb::QuickMethodRegion::Pe,
        "QC" => pb::QuickMethodRegion::Qc,
        _ => pb::QuickMethodRegion::Unspecified,
    }
}

fn kind_in(value: i32) -> Option<&'static str> {
    match pb::RemittanceKind::try_from(value) {
        Ok(pb::RemittanceKind::GstHst) => Some("gst_hst"),
        Ok(pb::RemittanceKind::Qst) => Some("qst"),
        Ok(pb::RemittanceKind::Unspecified) | Err(_) => None,
    }
}

fn kind_out(stored: &str) -> pb::RemittanceKind {
    match stored {
        "gst_hst" => pb::RemittanceKind::GstHst,
        "qst" => pb::RemittanceKind::Qst,
        _ => pb::RemittanceKind::Unspecified,
    }
}

/// A version in its contract form.
fn rate_out(row: QuickRateVersion) -> pb::QuickMethodRate {
    pb::QuickMethodRate {
        id: row.id.to_string(),
        kind: kind_out(&row.kind) as i32,
        establishment_region: region_out(&row.establishment_region) as i32,
        supply_region: region_out(&row.supply_region) as i32,
        percent: row.percent.normalize().to_string(),
        valid_from: Some(date_out(row.valid_from)),
        valid_until: row.valid_until.map(date_out),
        source: row.source,
        created_by: row.created_by.map(|id| id.to_string()).unwrap_or_default(),
        create_time: Some(to_timestamp(row.created_at)),
    }
}

/// The version asked for, validated field by field.
fn new_rate(violations: &mut Violations, rate: &pb::QuickMethodRate) -> Option<NewQuickRate> {
    let kind = kind_in(rate.kind);
    violations.check(kind.is_some(), "rate.kind", "must be GST_HST or QST");
    let establishment = region_in(rate.establishment_region);
    violations.check(
        establishment.is_some(),
        "rate.establishment_region",
        "must be a known region",
    );
    let supply = region_in(rate.supply_region);
    violations.check(
        supply.is_some(),
        "rate.supply_region",
        "must be a known region",
    );
    // The QST's quick method is Quebec's alone; the GST/HST's never names
    // Quebec, a non-participating province for it.
    match kind {
        Some("qst") if establishment.is_some_and(|region| region != "QC") => {
            violations.add("rate.establishment_region", "must be QC for the QST");
        }
        Some("gst_hst") if establishment == Some("QC") => {
            violations.add(
                "rate.establishment_region",
                "must be NON_PARTICIPATING for Quebec under the GST",
            );
        }
        _ => {}
    }
    match kind {
        Some("qst") if supply.is_some_and(|region| region != "QC") => {
            violations.add("rate.supply_region", "must be QC for the QST");
        }
        Some("gst_hst") if supply == Some("QC") => {
            violations.add(
                "rate.supply_region",
                "must be NON_PARTICIPATING for Quebec under the GST",
            );
        }
        _ => {}
    }
    let percent = fitflow_api::money::decimal(&rate.percent)
        .filter(|percent| percent.scale() <= 4 && *percent >= Decimal::ZERO)
        .filter(|percent| *percent <= Decimal::ONE_HUNDRED);
    violations.check(
        percent.is_some(),
        "rate.percent",
        "must be a decimal from 0 to 100 with at most four decimals, e.g. \"8.8\"",
    );
    let valid_from = date_in(violations, "rate.valid_from", rate.valid_from.as_ref());
    if required(violations, "rate.source", &rate.source) {
        check_text(
            violations,
            "rate.source",
            &rate.source,
            TextKind::Line,
            MAX_SOURCE,
        );
    }
    Some(NewQuickRate {
        kind: kind?,
        establishment_region: establishment?,
        supply_region: supply?,
        percent: percent?,
        valid_from: valid_from?,
        source: rate.source.clone(),
    })
}

/// ListQuickMethodRates.
pub(super) async fn list(
    table: &TaxTable,
    principal: &Principal,
) -> Result<pb::ListQuickMethodRatesResponse, Status> {
    let rows = table.quick_rates(principal).await?;
    Ok(pb::ListQuickMethodRatesResponse {
        rates: rows.into_iter().map(rate_out).collect(),
    })
}

/// AddQuickMethodRate.
pub(super) async fn add(
    table: &TaxTable,
    principal: &Principal,
    request: pb::AddQuickMethodRateRequest,
) -> Result<pb::AddQuickMethodRateResponse, Status> {
    let rate = request.rate.unwrap_or_default();
    let mut violations = Violations::new();
    let new = new_rate(&mut violations, &rate);
    done(violations)?;
    let Some(new) = new else {
        return Err(reject(ApiError::invalid_argument(Vec::new())));
    };
    let (added, ended) = table.add_quick_rate(principal, new).await?;
    Ok(pb::AddQuickMethodRateResponse {
        rate: Some(rate_out(added)),
        ended: ended.map(rate_out),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_region_round_trips_and_quebec_is_the_qsts_alone() {
        for value in 1..=7 {
            let stored = region_in(value).expect("a region");
            assert_eq!(region_out(stored) as i32, value);
        }
        assert_eq!(region_in(0), None);
        let mut violations = Violations::new();
        let rate = pb::QuickMethodRate {
            kind: pb::RemittanceKind::Qst as i32,
            establishment_region: pb::QuickMethodRegion::On as i32,
            supply_region: pb::QuickMethodRegion::Qc as i32,
            percent: "6.6".into(),
            valid_from: Some(date_out("2027-01-01".parse().unwrap())),
            source: "Revenu Québec IN-260".into(),
            ..Default::default()
        };
        assert!(new_rate(&mut violations, &rate).is_some());
        let refused = violations.into_result().expect_err("ON is not Quebec");
        assert!(format!("{refused:?}").contains("rate.establishment_region"));
    }
}
