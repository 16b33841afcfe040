// Unchanged jsforce against the nurture Salesforce emulator: log in, query, update, one Bulk 2.0 ingest job
// and one Bulk 2.0 query job, then identity, describe, Collections, upsert, queryMore/queryAll, a subquery, the
// older Bulk API (1.0), a SOAP convertLead and logout. Run by tests/integration/salesforce/test_emulator_jsforce.py, which starts the
// emulator and passes its settings as JSON in SF_EMULATOR (NODE_EXTRA_CA_CERTS trusts the emulator's CA).
// Prints one JSON line with what it saw; any failure exits non-zero with the error on stderr.
'use strict';

const jsforce = require('jsforce');

function collect(stream) {
  return new Promise((resolve, reject) => {
    const rows = [];
    stream.on('record', (r) => rows.push(r));
    stream.on('error', reject);
    stream.on('end', () => resolve(rows));
  });
}

function bulkQuery(conn, soql) {
  return conn.bulk2.query(soql, { pollInterval: 20, pollTimeout: 20000 }).then(collect);
}

// One Bulk API 1.0 job, closed before returning (conn.bulk.load closes it in the background, which would race
// the logout at the end).
async function bulk1(conn, operation, input) {
  const job = conn.bulk.createJob('Lead', operation);
  const batch = job.createBatch();
  batch.on('queue', () => batch.poll(20, 20000));
  const results = await batch.execute(input);
  const out = operation === 'query' ? await collect(batch.result(results[0].id)) : results;
  await job.close();
  return out;
}

async function main() {
  const cfg = JSON.parse(process.env.SF_EMULATOR);
  const options = { loginUrl: cfg.loginUrl, version: cfg.version };
  if (cfg.flow === 'oauth2-password') {
    options.oauth2 = { loginUrl: cfg.loginUrl, clientId: cfg.consumerKey, clientSecret: cfg.consumerSecret };
  }
  const conn = new jsforce.Connection(options);
  const userInfo = await conn.login(cfg.username, cfg.password + cfg.securityToken);
  const instanceUrl = conn.instanceUrl; // logout() clears it

  const found = await conn.query(`SELECT Id, LastName, Owner.Name FROM Lead WHERE Email = '${cfg.email}'`);
  const lead = found.records[0];
  const updated = await conn.sobject('Lead').update({ Id: lead.Id, Title: 'Updated by jsforce' });
  const after = await conn.sobject('Lead').retrieve(lead.Id);

  const loaded = await conn.bulk2.loadAndWaitForResults({
    object: 'Lead',
    operation: 'insert',
    input: [
      { LastName: 'Bulk One', Company: 'JsBulk', Email: 'bulk1@example.com' },
      { LastName: 'Bulk Two', Company: 'JsBulk', Email: 'bulk2@example.com' },
      { LastName: '', Company: 'JsBulk', Email: 'bulk3@example.com' },
    ],
    pollInterval: 20,
    pollTimeout: 20000,
  });
  const rows = await bulkQuery(conn, "SELECT Id, LastName, Email FROM Lead WHERE Company = 'JsBulk' ORDER BY Email");
  const grouped = await conn.query('SELECT Company, COUNT(Id) n FROM Lead GROUP BY Company ORDER BY Company');

  // What admins' scripts also do: identity, describe, sObject Collections, upsert on an external id, queryMore
  // (autoFetch) and queryAll, a parent-to-child subquery, then logout.
  const me = await conn.identity();
  const described = await conn.sobject('Lead').describe();
  const statusField = described.fields.find((f) => f.name === 'Status');
  const created = await conn.sobject('Contact').create([{ LastName: 'Col One' }, { LastName: 'Col Two' }]);
  const upserted = await conn.sobject('Task').upsert(
    { Nurture_Key__c: 'js-1', Subject: 'Call', WhoId: lead.Id }, 'Nurture_Key__c');
  const paged = await conn.query("SELECT Id FROM Lead WHERE Company = 'Paged'", { autoFetch: true, maxFetch: 10000 });
  await conn.sobject('Lead').destroy(lead.Id);
  const withDeleted = await conn.query(`SELECT Id, IsDeleted FROM Lead WHERE Id = '${lead.Id}'`, { scanAll: true });
  const nested = await conn.query('SELECT Name, (SELECT LastName FROM Contacts) FROM Account');
  // the older Bulk API (1.0: XML job info, CSV batches and results)
  const v1 = await bulk1(conn, 'insert', [
    { LastName: 'V1 One', Company: 'JsV1' }, { LastName: 'V1 Two', Company: '' }]);
  const v1rows = await bulk1(conn, 'query', "SELECT Id, LastName, CreatedDate FROM Lead WHERE Company = 'JsV1'");
  // lead conversion goes through the SOAP API, as on a real org
  const toConvert = (await conn.query("SELECT Id FROM Lead WHERE Company = 'Paged' ORDER BY Id LIMIT 2")).records;
  const converted = await conn.soap.convertLead([
    { leadId: toConvert[0].Id, convertedStatus: 'Closed - Converted', doNotCreateOpportunity: true },
    { leadId: toConvert[1].Id, convertedStatus: 'Working - Contacted' }]);
  await conn.logout();

  process.stdout.write(JSON.stringify({
    instanceUrl,
    userId: userInfo.id,
    queried: { totalSize: found.totalSize, lastName: lead.LastName, ownerType: lead.Owner.attributes.type },
    update: updated,
    titleAfter: after.Title,
    bulkIngest: {
      successful: loaded.successfulResults.length,
      failed: loaded.failedResults.map((r) => r.sf__Error),
    },
    bulkQuery: rows,
    grouped: grouped.records,
    identity: { userId: me.user_id, username: me.username },
    leadStatuses: statusField.picklistValues.map((p) => p.value),
    collections: created.map((r) => r.success),
    upsert: upserted.success,
    paged: { fetched: paged.records.length, totalSize: paged.totalSize },
    queryAll: withDeleted.records.map((r) => r.IsDeleted),
    nested: nested.records.map((r) => [r.Name, r.Contacts && r.Contacts.totalSize]),
    bulk1: {
      load: v1.map((r) => [r.success, r.created, r.errors.map((e) => e.split(':')[0])]),
      query: v1rows.map((r) => [r.LastName, /^\d{4}-\d\d-\d\dT.*Z$/.test(r.CreatedDate)]),
    },
    convertLead: converted.map((r) => [r.success, !!r.contactId, r.opportunityId || null,
      (r.errors || []).map((e) => e.statusCode)]),
    loggedOut: !conn.accessToken,
  }) + '\n');
}

main().catch((err) => {
  process.stderr.write(`jsforce smoke failed: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
