use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::ExitCode;

use scene_qr::auth;
use scene_qr::commands;
use scene_qr::import;
use scene_qr::settings::{Command, Settings, StatsCommand};
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
    match &settings.command {
        Some(Command::HashPassword { name }) => return hash_password(name),
        Some(Command::Stats {
            action: StatsCommand::Rebuild,
        }) => return rebuild_statistics(&settings).await,
        Some(Command::ImportEvents {
            file,
            server_stopped,
        }) => {
            let sharing = if *server_stopped {
                import::Sharing::Alone
            } else {
                import::Sharing::WithServer
            };
            return import_events(&settings, sharing, file.as_deref()).await;
        }
        None => {}
    }
    // Before anything listens: a bad combination or users file stops start-up here.
    let config = match settings.config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("scene-qr: {e}");
            return ExitCode::from(2);
        }
    };
    let _log = telemetry::init_logging(&settings.log_filter);

    let listener = match TcpListener::bind(config.listen) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!(
                "scene-qr: cannot listen on {} (SCENE_QR_LISTEN): {e}",
                config.listen
            );
            return ExitCode::from(2);
        }
    };
    let app = match Application::build(config, listener).await {
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

/// `scene-qr stats rebuild`.
async fn rebuild_statistics(settings: &Settings) -> ExitCode {
    let _log = telemetry::init_logging(&settings.log_filter);
    match commands::rebuild_statistics(&settings.database_url, settings.utc_offset).await {
        Ok(took) => {
            println!(
                "statistics rebuilt from the stored events in {:.1} s (UTC offset {})",
                took.as_secs_f64(),
                settings.utc_offset
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("scene-qr: the statistics could not be rebuilt: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `scene-qr hash-password NAME`: one password line from standard input (so it stays out
/// of the shell history and the process list), one users-file line to standard output.
fn hash_password(name: &str) -> ExitCode {
    if !auth::valid_name(name) {
        eprintln!("scene-qr: the name may hold letters, digits, '.', '_', '-' and '@'");
        return ExitCode::from(2);
    }
    let mut password = String::new();
    if std::io::stdin().read_line(&mut password).is_err() {
        eprintln!("scene-qr: cannot read the password from standard input");
        return ExitCode::from(2);
    }
    let password = password.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        eprintln!("scene-qr: the password is empty");
        return ExitCode::from(2);
    }
    match auth::hash_password(password) {
        Ok(hash) => {
            println!("{name}:{hash}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("scene-qr: hashing failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `scene-qr import-events [FILE]`: each rejected line on standard error as it is read,
/// the summary on standard output at the end.
async fn import_events(
    settings: &Settings,
    sharing: import::Sharing,
    file: Option<&Path>,
) -> ExitCode {
    let input = match import::open_input(file) {
        Ok(input) => input,
        Err(e) => {
            eprintln!("scene-qr: {e}");
            return ExitCode::from(2);
        }
    };
    let mut rejections = std::io::BufWriter::new(std::io::stderr());
    let imported = match import::import_events(
        &settings.database_url,
        settings.utc_offset,
        sharing,
        input,
        &mut rejections,
    )
    .await
    {
        Ok(imported) => imported,
        Err(e) => {
            eprintln!("scene-qr: {e}");
            return ExitCode::from(2);
        }
    };
    let _ = rejections.flush();
    println!("{}", imported.summary);
    if let Some(e) = &imported.stopped {
        eprintln!("scene-qr: import stopped: {e}");
    }
    ExitCode::from(imported.exit_code())
}
