/*
 * Sluice: ServiceNow business rule that sends incident changes to Sluice.
 *
 * Table: Incident [incident]. When: after. Insert: yes. Update: yes.
 * Advanced: yes; paste this script. Order: 1000 (after other rules have
 * set their fields).
 *
 * It posts one JSON document per insert or update to Sluice's
 * `POST /hooks/servicenow`, signed with HMAC-SHA256 over the exact body,
 * base64-encoded, in the `X-Sluice-Signature` header (the host's
 * `servicenow` verify preset). The shared secret lives in a system
 * property (sys_properties, type password2), never in this script:
 * create `x_sluice.webhook_secret` with the same value as the host's
 * `providers.servicenow.verify.secret`.
 *
 * Choice fields are sent as display values ("In Progress", "1 - Critical"),
 * which is what Sluice's `mappings` name. Send every field a mapping of
 * yours reads: add custom fields (u_customer, impact, ...) to FIELDS.
 *
 * The rule sends changes made by Sluice's own integration user too; the
 * mapper drops them (mapper_config.integration_user). Skip them here
 * instead to save the requests: set SKIP_USER.
 */
(function executeRule(current, previous /* null on insert */) {
    var ENDPOINT = 'https://sluice.example.com/hooks/servicenow';
    var SECRET_PROPERTY = 'x_sluice.webhook_secret';
    var SKIP_USER = ''; // e.g. 'sluice.integration'
    var FIELDS = ['state', 'priority', 'urgency', 'impact', 'short_description',
                  'description', 'assigned_to'];

    if (SKIP_USER && gs.getUserName() == SKIP_USER) {
        return;
    }

    var insert = current.operation() == 'insert';
    var record = {};
    var changed = [];
    for (var i = 0; i < FIELDS.length; i++) {
        var name = FIELDS[i];
        if (!current.isValidField(name)) {
            continue;
        }
        record[name] = current.getDisplayValue(name) + '';
        if (!insert && current[name].changes()) {
            changed.push(name);
        }
    }
    record.assigned_to_email = current.assigned_to.nil() ? '' : current.assigned_to.email + '';
    record.caller_email = current.caller_id.nil() ? '' : current.caller_id.email + '';

    var payload = {
        event: insert ? 'insert' : 'update',
        table: current.getTableName(),
        sys_id: current.getUniqueValue(),
        number: current.getValue('number'),
        // Makes every update's body unique: Sluice dedupes by body hash.
        sys_mod_count: current.getValue('sys_mod_count'),
        updated_at: current.getValue('sys_updated_on'),
        updated_by: gs.getUserName(),
        user_email: gs.getUser().getEmail() || '',
        changed: changed,
        record: record
    };
    // A journal entry reads "2026-11-30 10:00:00 - Beth Anglin (Work notes)\n<text>":
    // the first line is ServiceNow's header.
    var journal = function (field) {
        var entry = current[field].getJournalEntry(1) + '';
        var newline = entry.indexOf('\n');
        return (newline < 0 ? entry : entry.substring(newline + 1)).replace(/\s+$/, '');
    };
    if (!insert && current.work_notes.changes()) {
        payload.work_note = journal('work_notes');
    }
    if (!insert && current.comments.changes()) {
        payload.comment = journal('comments');
    }
    if (!insert && changed.length == 0 && !payload.work_note && !payload.comment) {
        return; // nothing Sluice reads has changed
    }

    var body = JSON.stringify(payload);
    // generateMac takes the key base64-encoded and answers base64.
    var key = GlideStringUtil.base64Encode(gs.getProperty(SECRET_PROPERTY, ''));
    var signature = new GlideCertificateEncryption().generateMac(key, 'HmacSHA256', body);

    var request = new sn_ws.RESTMessageV2();
    request.setEndpoint(ENDPOINT);
    request.setHttpMethod('post');
    request.setRequestHeader('Content-Type', 'application/json');
    request.setRequestHeader('X-Sluice-Signature', signature);
    request.setRequestBody(body);
    // Sluice acknowledges once the delivery is stored; do not hold the
    // user's transaction for it.
    request.executeAsync();
})(current, previous);
