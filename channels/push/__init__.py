"""Mobile push adapters: Firebase Cloud Messaging HTTP v1 (:mod:`channels.push.fcm`) and APNs
(:mod:`channels.push.apns`), both over HTTP/2 with httpx (docs/push.md)."""
