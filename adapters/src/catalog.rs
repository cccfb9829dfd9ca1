//! The departments and the record types each one owns.

use std::fmt;
use std::str::FromStr;

/// A departmental system that pushes records to the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Department {
    Tax,
    Hrss,
    Market,
    RealEstate,
    HousingFund,
    Construction,
    Civil,
}

impl Department {
    pub const ALL: [Department; 7] = [
        Department::Tax,
        Department::Hrss,
        Department::Market,
        Department::RealEstate,
        Department::HousingFund,
        Department::Construction,
        Department::Civil,
    ];

    /// The name used in certificates (`urn:tongban:department:<name>`) and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Department::Tax => "tax",
            Department::Hrss => "hrss",
            Department::Market => "market",
            Department::RealEstate => "realestate",
            Department::HousingFund => "housingfund",
            Department::Construction => "construction",
            Department::Civil => "civil",
        }
    }

    /// The record types this department owns and alone may push.
    pub fn record_types(self) -> impl Iterator<Item = RecordType> {
        RecordType::ALL.into_iter().filter(move |t| t.department() == self)
    }
}

impl fmt::Display for Department {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Department {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Department::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| UnknownName(s.to_owned()))
    }
}

/// A kind of record a department exports, e.g. `tax.taxpayer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordType {
    TaxTaxpayer,
    HrssInsuredPerson,
    MarketEntity,
    RealEstateTitle,
    HousingFundAccount,
    ConstructionPermit,
    CivilMarriage,
    CivilAssistance,
}

impl RecordType {
    pub const ALL: [RecordType; 8] = [
        RecordType::TaxTaxpayer,
        RecordType::HrssInsuredPerson,
        RecordType::MarketEntity,
        RecordType::RealEstateTitle,
        RecordType::HousingFundAccount,
        RecordType::ConstructionPermit,
        RecordType::CivilMarriage,
        RecordType::CivilAssistance,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::TaxTaxpayer => "tax.taxpayer",
            RecordType::HrssInsuredPerson => "hrss.insured_person",
            RecordType::MarketEntity => "market.entity",
            RecordType::RealEstateTitle => "realestate.title",
            RecordType::HousingFundAccount => "housingfund.account",
            RecordType::ConstructionPermit => "construction.permit",
            RecordType::CivilMarriage => "civil.marriage",
            RecordType::CivilAssistance => "civil.assistance",
        }
    }

    /// The only department allowed to push this record type.
    pub fn department(self) -> Department {
        match self {
            RecordType::TaxTaxpayer => Department::Tax,
            RecordType::HrssInsuredPerson => Department::Hrss,
            RecordType::MarketEntity => Department::Market,
            RecordType::RealEstateTitle => Department::RealEstate,
            RecordType::HousingFundAccount => Department::HousingFund,
            RecordType::ConstructionPermit => Department::Construction,
            RecordType::CivilMarriage | RecordType::CivilAssistance => Department::Civil,
        }
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RecordType {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RecordType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownName(s.to_owned()))
    }
}

/// A department or record type name that is not in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName(pub String);

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown name {:?}", self.0)
    }
}

impl std::error::Error for UnknownName {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in RecordType::ALL {
            assert_eq!(t.as_str().parse::<RecordType>(), Ok(t));
            assert!(t.as_str().starts_with(t.department().as_str()));
        }
        for d in Department::ALL {
            assert_eq!(d.as_str().parse::<Department>(), Ok(d));
            assert!(d.record_types().count() >= 1);
        }
        assert_eq!(Department::Civil.record_types().count(), 2);
        assert!("tax.payer".parse::<RecordType>().is_err());
    }
}
