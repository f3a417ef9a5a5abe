//! What a staff member can do about a WeChat errcode.

/// A hint for the errcodes people actually meet, in the words of the person who must act.
pub fn hint(errcode: i64) -> Option<&'static str> {
    Some(match errcode {
        -1 => "WeChat is busy. Try again in a few seconds.",
        40001 | 40014 | 42001 => {
            "WeChat rejected the access token even after a fresh one was fetched. Another system \
             sharing this AppID may be forcing token refreshes: have every system use the stable \
             token endpoint, then try again."
        }
        40013 => {
            "WeChat does not know this AppID. Check WECHAT_APPID against the account's Basic Configuration page."
        }
        40125 => {
            "WeChat refused the AppSecret. If it was reset on the platform, set the new one in \
             WECHAT_APPSECRET and restart scene-qr."
        }
        40164 => {
            "This server's outgoing IP address is not on the account's IP whitelist. An \
             administrator adds it under Settings and Development > Basic Configuration > IP \
             whitelist on mp.weixin.qq.com."
        }
        45009 => {
            "The account's daily quota for this API is used up. It resets at midnight Beijing \
             time; an administrator can also reset it on the platform. Codes already created \
             keep working."
        }
        45011 => "WeChat says the API is being called too often. Wait a minute and try again.",
        45029 => {
            "The account holds the maximum number of permanent codes (100,000). Use a temporary \
             code, or reuse an existing permanent scene."
        }
        48001 => {
            "This account may not create parametric QR codes: the API needs a verified service \
             account."
        }
        _ => return None,
    })
}
