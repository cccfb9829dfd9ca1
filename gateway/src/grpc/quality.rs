//! The `tongban.v1.Quality` service: a department's data-quality report on its own
//! records. Authorisation is the [`QualityDesk`]'s; this file only converts.
//!
//! Not audited: a report holds codes, JSON Pointers, messages without values and the
//! department's own source IDs, never personal data (see `crate::quality`).

use std::sync::Arc;

use tongban_proto::v1 as pb;
use tongban_proto::v1::quality_server::Quality;
use tonic::{Request, Response, Status};

use super::convert::quality_report_response;
use crate::quality::{QualityDesk, ReportRequest};
use crate::store::Store;

pub struct QualityService<S> {
    desk: Arc<QualityDesk<S>>,
}

impl<S: Store> QualityService<S> {
    pub fn new(desk: Arc<QualityDesk<S>>) -> Self {
        QualityService { desk }
    }
}

/// An empty string on the wire means "not given".
fn given(text: String) -> Option<String> {
    (!text.trim().is_empty()).then_some(text)
}

#[tonic::async_trait]
impl<S: Store> Quality for QualityService<S> {
    async fn report(
        &self,
        request: Request<pb::QualityReportRequest>,
    ) -> Result<Response<pb::QualityReportResponse>, Status> {
        let identity = super::caller(&request)?;
        let request = request.into_inner();
        let report = self
            .desk
            .report(
                &identity,
                ReportRequest {
                    record_type: given(request.record_type),
                    code: given(request.code),
                    page_size: usize::try_from(request.page_size).unwrap_or(usize::MAX),
                    after: given(request.after),
                },
            )
            .await?;
        Ok(Response::new(quality_report_response(report)))
    }
}
