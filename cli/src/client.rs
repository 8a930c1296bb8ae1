//! The CLI's side of the socket.

use tokio::net::UnixStream;

use crate::error::CliError;
use crate::instance::Instance;
use crate::ipc::{read_frame, write_frame, Request, Response};

pub struct Client {
    pub stream: UnixStream,
}

impl Client {
    pub async fn connect(instance: &Instance) -> Result<Self, CliError> {
        match UnixStream::connect(instance.socket()).await {
            Ok(stream) => Ok(Client { stream }),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                // Before `network init` there is nothing to start yet: say the first step.
                match instance.is_initialised() {
                    true => Err(CliError::NotRunning {
                        instance: instance.name.clone(),
                    }),
                    false => Err(crate::start::not_initialised(instance)),
                }
            }
            Err(source) => Err(CliError::Connect {
                path: instance.socket(),
                source,
            }),
        }
    }

    pub async fn send(&mut self, request: &Request) -> Result<(), CliError> {
        Ok(write_frame(&mut self.stream, request).await?)
    }

    pub async fn receive(&mut self) -> Result<Response, CliError> {
        match read_frame(&mut self.stream).await? {
            Response::Error(e) => Err(e.into()),
            other => Ok(other),
        }
    }

    /// One request, one response.
    pub async fn call(instance: &Instance, request: &Request) -> Result<Response, CliError> {
        let mut client = Client::connect(instance).await?;
        client.send(request).await?;
        client.receive().await
    }
}
