-- Service records (服务单, T-7) and second services.
ALTER TABLE tickets
    ADD COLUMN second_service        boolean NOT NULL DEFAULT false,
    ADD COLUMN second_service_reason text    NOT NULL DEFAULT '';

CREATE TABLE service_records (
    id                     uuid        PRIMARY KEY,
    ticket_id              uuid        NOT NULL REFERENCES tickets (id),
    work_done              text        NOT NULL,
    diagnosis              text        NOT NULL,
    parts_used             jsonb       NOT NULL,   -- [{"part_number": …, "quantity": …}]
    signature_name         text        NOT NULL,
    signature_time         timestamptz,
    image_ref              text        NOT NULL,
    finished               boolean     NOT NULL,
    unfinished_reason      text        NOT NULL,
    second_visit_time      timestamptz,
    second_service         boolean     NOT NULL,
    second_service_reason  text        NOT NULL,
    record_time            timestamptz NOT NULL,
    recorded_by            text        NOT NULL
);
CREATE INDEX service_records_ticket ON service_records (ticket_id, record_time);
