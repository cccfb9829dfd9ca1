//! The gRPC contract of Tongban: package `tongban.v1`, generated from `proto/tongban/v1`.
//!
//! Everything here is generated; the hub converts these wire types into its own
//! domain types at the gRPC boundary (`tongban-gateway`'s `grpc` module) so that no
//! other part of the hub depends on them.

#![allow(clippy::doc_lazy_continuation, clippy::large_enum_variant)]

pub mod v1 {
    tonic::include_proto!("tongban.v1");
}

/// The encoded `FileDescriptorSet` of every `tongban.v1` file, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/tongban_descriptor.bin"));
