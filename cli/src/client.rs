//! The CLI's side of the socket.

use tokio::net::UnixStream;

use crate::exit::{CliError, Exit};
use crate::instance::Instance;
use crate::ipc::{read_frame, write_frame, FrameError, Request, Response};

pub struct Client {
    pub stream: UnixStream,
}

pub fn not_running(instance: &Instance) -> CliError {
    let flag = match instance.name.as_str() {
        "default" => String::new(),
        name => format!(" --instance {name}"),
    };
    CliError::new(
        Exit::NotRunning,
        format!(
            "the paircode daemon for instance '{}' is not running; start it with `paircode{flag} start`",
            instance.name
        ),
    )
}

fn frame_error(e: FrameError) -> CliError {
    match e {
        FrameError::Closed => CliError::new(Exit::Failure, "the daemon closed the connection"),
        other => CliError::new(Exit::Failure, other.to_string()),
    }
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
                Err(not_running(instance))
            }
            Err(e) => Err(CliError::new(
                Exit::Failure,
                format!("connecting to {}: {e}", instance.socket().display()),
            )),
        }
    }

    pub async fn send(&mut self, request: &Request) -> Result<(), CliError> {
        write_frame(&mut self.stream, request)
            .await
            .map_err(frame_error)
    }

    pub async fn receive(&mut self) -> Result<Response, CliError> {
        match read_frame(&mut self.stream).await.map_err(frame_error)? {
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
