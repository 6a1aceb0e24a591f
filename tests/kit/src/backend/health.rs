//! `grpc.health.v1.Health/Check`: SERVING for the whole server (`""`) and for each service it
//! serves, SERVICE_UNKNOWN for others. What Envoy's active gRPC health checks call.

use crate::proto::grpc::health::v1 as health;
use health::health_check_response::ServingStatus;

pub struct HealthService {
    /// Full names of the services served (`meshgate.demo.v1.Payments`).
    pub services: Vec<String>,
}

#[tonic::async_trait]
impl health::health_server::Health for HealthService {
    async fn check(
        &self,
        request: tonic::Request<health::HealthCheckRequest>,
    ) -> Result<tonic::Response<health::HealthCheckResponse>, tonic::Status> {
        let service = request.into_inner().service;
        let status = if service.is_empty() || self.services.contains(&service) {
            ServingStatus::Serving
        } else {
            ServingStatus::ServiceUnknown
        };
        Ok(tonic::Response::new(health::HealthCheckResponse {
            status: status as i32,
        }))
    }
}
