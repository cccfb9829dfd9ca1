//! hrss
