-- Contacts' phone keys in E.164 (`+8613800138000`), the platform's one form of a phone number
-- (crm_kit::phone, issue 15). The old keys were Chinese national digits: a mobile's eleven
-- digits, a landline with its trunk 0, another country's number with 00 — each maps to exactly
-- one E.164 key.
UPDATE contacts SET phone_key = CASE
    WHEN phone_key ~ '^00' THEN '+' || substr(phone_key, 3)
    WHEN phone_key ~ '^0' THEN '+86' || substr(phone_key, 2)
    ELSE '+86' || phone_key
END
WHERE phone_key <> '' AND phone_key !~ '^\+';
