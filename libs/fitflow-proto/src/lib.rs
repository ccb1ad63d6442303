//! Generated gRPC contracts for every FitFlow package.

/// The encoded `FileDescriptorSet` of every FitFlow package, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/fitflow_descriptor.bin"));

/// Generated modules, nested exactly as the proto packages so that
/// cross-package references resolve.
#[allow(unreachable_pub, missing_docs, clippy::all, clippy::pedantic)]
pub mod fitflow {
    /// `fitflow.type.v1`.
    pub mod r#type {
        /// Version 1.
        pub mod v1 {
            tonic::include_proto!("fitflow.r#type.v1");
        }
    }
    /// `fitflow.identity.v1`.
    pub mod identity {
        /// Version 1.
        pub mod v1 {
            tonic::include_proto!("fitflow.identity.v1");
        }
    }
    /// `fitflow.audit.v1`.
    pub mod audit {
        /// Version 1.
        pub mod v1 {
            tonic::include_proto!("fitflow.audit.v1");
        }
    }
}

pub use fitflow::audit::v1 as audit;
pub use fitflow::identity::v1 as identity;
pub use fitflow::r#type::v1 as types;
