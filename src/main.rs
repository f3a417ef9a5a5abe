use std::net::TcpListener;
use std::process::ExitCode;

use scene_qr::settings::Settings;
use scene_qr::startup::Application;
use scene_qr::telemetry;

#[actix_web::main]
async fn main() -> ExitCode {
    let settings = match Settings::from_args() {
        Ok(Some(settings)) => settings,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scene-qr: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init_logging(&settings.log_filter);

    let listener = match TcpListener::bind(settings.listen) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!(
                "scene-qr: cannot listen on {} (SCENE_QR_LISTEN): {e}",
                settings.listen
            );
            return ExitCode::from(2);
        }
    };
    let app = match Application::build(&settings, listener).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("scene-qr: {e}");
            return ExitCode::from(2);
        }
    };
    log::info!("scene-qr listening on http://{}", app.address());
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("server failed: {e}");
            ExitCode::FAILURE
        }
    }
}
