-- The notifications service schema (N-1 … N-6). Enum columns hold the protobuf enum value
-- names (e.g. 'CHANNEL_SMS') so rows read the same as the API.

-- Message templates, one per name and language (N-2).
CREATE TABLE templates (
    name          text        NOT NULL,
    language      text        NOT NULL,
    kind          text        NOT NULL,
    subject       text        NOT NULL,
    body          text        NOT NULL,
    variables     text[]      NOT NULL,   -- declared variables, for kind 'manual'
    version       bigint      NOT NULL,
    update_time   timestamptz NOT NULL,
    updated_by    text        NOT NULL,
    PRIMARY KEY (name, language)
);

-- The platform's users as the gateway announced them (its events): how to reach each one.
CREATE TABLE users (
    id            text        PRIMARY KEY,
    display_name  text        NOT NULL,
    roles         text[]      NOT NULL,
    region        text        NOT NULL,
    partner_id    text        NOT NULL,
    email         text        NOT NULL,
    phone         text        NOT NULL,
    language      text        NOT NULL,
    update_time   timestamptz NOT NULL
);
CREATE INDEX users_roles ON users USING gin (roles);

-- Partner organisations' webhooks.
CREATE TABLE partner_endpoints (
    partner_id    text        PRIMARY KEY,
    url           text        NOT NULL,
    secret        text        NOT NULL,
    language      text        NOT NULL,
    update_time   timestamptz NOT NULL,
    updated_by    text        NOT NULL
);

-- Addresses that opted out of a channel (N-6).
CREATE TABLE opt_outs (
    channel       text        NOT NULL,
    address       text        NOT NULL,   -- normalised: digits of a phone, lower-case e-mail
    customer_id   text        NOT NULL,
    reason        text        NOT NULL,
    create_time   timestamptz NOT NULL,
    created_by    text        NOT NULL,
    PRIMARY KEY (channel, address)
);

-- One message, made once per triggering event and rule (or per SendNotification request).
CREATE TABLE notifications (
    id            uuid        PRIMARY KEY,
    kind          text        NOT NULL,
    template      text        NOT NULL,
    event_id      text        NOT NULL,
    customer_id   text        NOT NULL,
    urgent        boolean     NOT NULL,
    deadline      timestamptz,
    create_time   timestamptz NOT NULL
);
-- ids are UUIDv7, so id order is creation order: lists page by id
CREATE INDEX notifications_kind ON notifications (kind, id);
CREATE INDEX notifications_customer ON notifications (customer_id, id) WHERE customer_id <> '';
-- one message per event and rule (template), however often the event is handled
CREATE UNIQUE INDEX notifications_once ON notifications (event_id, template) WHERE event_id <> '';

-- One delivery per message, recipient and channel: the de-duplication key of N-6.
CREATE TABLE deliveries (
    id                 uuid        PRIMARY KEY,
    notification_id    uuid        NOT NULL REFERENCES notifications (id),
    recipient          text        NOT NULL,
    channel            text        NOT NULL,
    address            text        NOT NULL,
    address_key        text        NOT NULL,   -- normalised, as opt_outs stores it
    language           text        NOT NULL,
    subject            text        NOT NULL,
    body               text        NOT NULL,
    urgent             boolean     NOT NULL,
    state              text        NOT NULL,
    attempts           integer     NOT NULL,
    last_error         text        NOT NULL,
    next_attempt_time  timestamptz NOT NULL,
    sent_time          timestamptz,
    deadline           timestamptz,
    deadline_missed    boolean     NOT NULL DEFAULT false,
    suppressed_reason  text        NOT NULL DEFAULT '',
    CONSTRAINT deliveries_once UNIQUE (notification_id, recipient, channel)
);
-- what the senders pick next: urgent first, then by due time
-- (a delivery being sent has next_attempt_time = the end of its lease)
CREATE INDEX deliveries_due ON deliveries (urgent DESC, next_attempt_time)
    WHERE state IN ('DELIVERY_STATE_PENDING', 'DELIVERY_STATE_SENDING');
CREATE INDEX deliveries_recipient ON deliveries (recipient, notification_id);
CREATE INDEX deliveries_deadline ON deliveries (deadline)
    WHERE deadline IS NOT NULL AND sent_time IS NULL AND NOT deadline_missed;

-- In-app inboxes (the inbox channel delivers here, in the transaction that makes the message).
CREATE TABLE inbox (
    id               uuid        PRIMARY KEY,
    recipient        text        NOT NULL,
    notification_id  uuid        NOT NULL REFERENCES notifications (id),
    subject          text        NOT NULL,
    body             text        NOT NULL,
    urgent           boolean     NOT NULL,
    create_time      timestamptz NOT NULL,
    read_time        timestamptz
);
CREATE INDEX inbox_newest ON inbox (recipient, id);
CREATE INDEX inbox_unread ON inbox (recipient) WHERE read_time IS NULL;

-- What the development sink provider would have sent.
CREATE TABLE sink_messages (
    id            uuid        PRIMARY KEY,
    delivery_id   uuid        NOT NULL UNIQUE,   -- the idempotency key a provider dedupes by
    channel       text        NOT NULL,
    address       text        NOT NULL,
    subject       text        NOT NULL,
    body          text        NOT NULL,
    create_time   timestamptz NOT NULL
);
CREATE INDEX sink_messages_channel ON sink_messages (channel, id);
