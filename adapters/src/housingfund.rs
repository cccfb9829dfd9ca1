//! housingfund
