//! The JSON Schemas of the eight record types (`schemas/` at the repository root),
//! compiled into the binary so that a deployed hub validates exactly what it was
//! tested with.

use tongban_adapters::RecordType;

/// The schema text of a record type.
pub fn schema_text(record_type: RecordType) -> &'static str {
    match record_type {
        RecordType::TaxTaxpayer => include_str!("../../schemas/tax.taxpayer.schema.json"),
        RecordType::HrssInsuredPerson => include_str!("../../schemas/hrss.insured_person.schema.json"),
        RecordType::MarketEntity => include_str!("../../schemas/market.entity.schema.json"),
        RecordType::RealEstateTitle => include_str!("../../schemas/realestate.title.schema.json"),
        RecordType::HousingFundAccount => include_str!("../../schemas/housingfund.account.schema.json"),
        RecordType::ConstructionPermit => include_str!("../../schemas/construction.permit.schema.json"),
        RecordType::CivilMarriage => include_str!("../../schemas/civil.marriage.schema.json"),
        RecordType::CivilAssistance => include_str!("../../schemas/civil.assistance.schema.json"),
    }
}
