"""A generated history of pushes, as JSON lines for `scene-qr import-events`.

    python3 bench/events.py EVENTS [START]

2,000 scenes over 60 days from START (Unix seconds, default 1700000000); about one user
in five scans more than once; about one event in ten is an unfollow. Openids look like
WeChat's (28 characters, in no order that helps an index); some scenes are far busier than
others, as shop posters are; each scene's follows and scans carry its ticket. Seeded: the
same arguments give the same file. Lines come in time order.
"""

import base64
import hashlib
import random
import sys

events = int(sys.argv[1])
start = int(sys.argv[2]) if len(sys.argv) > 2 else 1_700_000_000
scenes, days = 2000, 60
random.seed(13)


def openid(user):
    digest = hashlib.md5(user.to_bytes(8, "little")).digest()
    return "o" + base64.urlsafe_b64encode(digest + digest[:4]).decode()[:27]


tickets = [
    base64.b64encode(hashlib.sha256(b"ticket%d" % s).digest() * 2).decode()[:96]
    for s in range(scenes + 1)
]
population = range(1, scenes + 1)
cumulative, total = [], 0.0
for s in population:
    total += 1 / s**0.8
    cumulative.append(total)


def any_scene():
    return random.choices(population, cum_weights=cumulative)[0]


lines = []
user = 0
while len(lines) < events:
    user += 1
    who = openid(user)
    at = start + random.randrange(days * 86400)
    scene = any_scene()
    lines.append((at, who, "subscribe", "qrscene_%d" % scene, tickets[scene]))
    if random.random() < 0.2:
        for _ in range(random.randint(1, 5)):
            at += random.randrange(1, 10 * 86400)
            if random.random() < 0.3:
                scene = any_scene()
            lines.append((at, who, "SCAN", str(scene), tickets[scene]))
    if random.random() < 0.178:
        lines.append((at + random.randrange(60, 20 * 86400), who, "unsubscribe", "", None))
lines = lines[:events]
lines.sort()
out = sys.stdout
for at, who, event, key, ticket in lines:
    ticket = ', "Ticket": "%s"' % ticket if ticket else ""
    out.write(
        '{"ToUserName": "gh_45072270791c", "FromUserName": "%s", "CreateTime": %d, '
        '"Event": "%s", "EventKey": "%s"%s}\n' % (who, at, event, key, ticket)
    )
