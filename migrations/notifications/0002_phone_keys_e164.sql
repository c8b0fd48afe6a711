-- SMS opt-outs and delivery addresses keyed in E.164 (`+8613800138000`), the platform's one
-- form of a phone number (crm_kit::phone, issue 15). The old keys were the digits with a +86 or
-- 0086 prefix dropped, but `8613800138000` kept it, so an opt-out entered in one form did not
-- stop a message addressed in another. Mapped with China as home: eleven digits from 1 are a
-- mobile, 86 and eleven such digits the same mobile, 00 an international prefix, a leading 0
-- a trunk prefix, anything else national digits. (A key from a +1 number written with its +,
-- `14155550100`, cannot be told from a Chinese mobile and is read as one.)
CREATE FUNCTION pg_temp.e164(digits text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN digits ~ '^\+' OR digits = '' THEN digits
        WHEN digits ~ '^861[0-9]{10}$' THEN '+' || digits
        WHEN digits ~ '^00' THEN '+' || substr(digits, 3)
        WHEN digits ~ '^0' THEN '+86' || ltrim(digits, '0')
        ELSE '+86' || digits
    END
$$;

WITH moved AS (
    DELETE FROM opt_outs WHERE channel = 'CHANNEL_SMS' AND address !~ '^\+' RETURNING *
)
INSERT INTO opt_outs (channel, address, customer_id, reason, create_time, created_by)
SELECT channel, pg_temp.e164(address), customer_id, reason, create_time, created_by FROM moved
ON CONFLICT (channel, address) DO NOTHING;

UPDATE deliveries SET address_key = pg_temp.e164(address_key)
WHERE channel = 'CHANNEL_SMS' AND address_key !~ '^\+';
