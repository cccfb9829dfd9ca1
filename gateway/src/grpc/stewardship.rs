//! The `tongban.v1.Stewardship` service: the review queue, a steward's decisions,
//! merges and splits, and explanations. Authorisation and its audit are the
//! [`StewardDesk`]'s; this file only converts.

use std::sync::Arc;

use tongban_proto::v1 as pb;
use tongban_proto::v1::stewardship_server::Stewardship;
use tonic::{Request, Response, Status};

use super::convert::{explain_response, mention_from_pb, reviews_response, steward_response};
use crate::stewardship::{StewardAction, StewardDesk, StewardError, Verdict};
use crate::store::Store;

pub struct StewardshipService<S> {
    desk: Arc<StewardDesk<S>>,
}

impl<S: Store> StewardshipService<S> {
    pub fn new(desk: Arc<StewardDesk<S>>) -> Self {
        StewardshipService { desk }
    }

    /// Carries out what a request asks, or refuses it.
    async fn act<T>(
        &self,
        request: Request<T>,
        action: impl FnOnce(T) -> Result<StewardAction, StewardError>,
    ) -> Result<Response<pb::StewardResponse>, Status> {
        let identity = super::caller(&request)?;
        let action = action(request.into_inner());
        let outcome = self.desk.act(&identity, action).await?;
        Ok(Response::new(steward_response(outcome)))
    }
}

#[tonic::async_trait]
impl<S: Store> Stewardship for StewardshipService<S> {
    async fn list_reviews(
        &self,
        request: Request<pb::ListReviewsRequest>,
    ) -> Result<Response<pb::ListReviewsResponse>, Status> {
        let identity = super::caller(&request)?;
        let request = request.into_inner();
        let page_size = usize::try_from(request.page_size).unwrap_or(usize::MAX);
        let views = self.desk.reviews(&identity, request.after, page_size).await?;
        Ok(Response::new(reviews_response(views, request.after)))
    }

    async fn decide(&self, request: Request<pb::DecideRequest>) -> Result<Response<pb::StewardResponse>, Status> {
        self.act(request, |decide| {
            let verdict = match pb::Verdict::try_from(decide.verdict) {
                Ok(pb::Verdict::Same) => Verdict::Same,
                Ok(pb::Verdict::Different) => Verdict::Different,
                _ => {
                    return Err(StewardError::InvalidArgument(
                        "verdict must be VERDICT_SAME or VERDICT_DIFFERENT".to_owned(),
                    ))
                }
            };
            Ok(StewardAction::Decide {
                pair: decide.pair_id,
                verdict,
            })
        })
        .await
    }

    async fn merge(&self, request: Request<pb::MergeRequest>) -> Result<Response<pb::StewardResponse>, Status> {
        self.act(request, |merge| {
            Ok(StewardAction::Merge {
                entity: merge.unified_id.trim().to_owned(),
                other: merge.other_id.trim().to_owned(),
            })
        })
        .await
    }

    async fn split(&self, request: Request<pb::SplitRequest>) -> Result<Response<pb::StewardResponse>, Status> {
        self.act(request, |split| {
            let mention = split
                .mention
                .ok_or_else(|| StewardError::InvalidArgument("name the mention to split out".to_owned()))?;
            Ok(StewardAction::Split {
                mention: mention_from_pb(mention),
            })
        })
        .await
    }

    async fn explain(&self, request: Request<pb::ExplainRequest>) -> Result<Response<pb::ExplainResponse>, Status> {
        let identity = super::caller(&request)?;
        let id = request.into_inner().unified_id;
        let explanation = self.desk.explain(&identity, id.trim()).await?;
        Ok(Response::new(explain_response(explanation)))
    }
}
