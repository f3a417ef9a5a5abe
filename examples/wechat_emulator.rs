//! The WeChat emulator as its own process, for benchmarks: a loopback stand-in for
//! api.weixin.qq.com with an optional delay per call.
//!
//!     cargo run --release --example wechat_emulator -- 127.0.0.1:18090 wxbench benchsecret 20
//!
//! Arguments: listen address, AppID, AppSecret, delay per token/create call in ms.
//! `GET /emulator/calls` reports the calls received so far.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use scene_qr::emulator::{self, Api, Emulator, EmulatorConfig};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, appid, secret, delay_ms] = args.as_slice() else {
        eprintln!("usage: wechat_emulator LISTEN APPID SECRET DELAY_MS");
        std::process::exit(2);
    };
    let delay = Duration::from_millis(delay_ms.parse().unwrap_or(0));
    let emulator = Arc::new(Emulator::new(EmulatorConfig {
        appid: appid.clone(),
        secret: secret.clone(),
        token_expires_in: 7200,
    }));
    emulator.keep_request_log(false);
    for api in [Api::Token, Api::StableToken, Api::QrcodeCreate] {
        emulator.set_delay(api, delay);
    }
    let listener = TcpListener::bind(listen)?;
    eprintln!("emulator listening on http://{}", listener.local_addr()?);
    emulator::start(listener, emulator)
        .map_err(std::io::Error::other)?
        .await
}
