// bungie-api-ts against one host: node client.mjs <base URL> <output file>
// The HttpClient only swaps Bungie's host for <base URL>; everything else is the library's.
import { writeFileSync } from 'node:fs';
import {
  getDestinyManifest,
  getDestinyEntityDefinition,
  getDestinyManifestComponent,
  getDestinyManifestSlice,
  getAllDestinyManifestComponents,
} from 'bungie-api-ts/destiny2';

const [base, output] = process.argv.slice(2);
const requested = [];

async function http(config) {
  const url = new URL(config.url);
  const swapped = new URL(base + url.pathname + url.search);
  for (const [key, value] of Object.entries(config.params || {})) swapped.searchParams.set(key, value);
  requested.push(swapped.pathname);
  const response = await fetch(swapped, {
    method: config.method,
    headers: { 'X-API-Key': 'fake-api-key' },
    body: config.body ? JSON.stringify(config.body) : undefined,
  });
  if (!response.ok) throw new Error(`${response.status} for ${swapped}`);
  return response.json();
}

const manifest = (await getDestinyManifest(http)).Response;
const results = {
  manifest,
  entity: await getDestinyEntityDefinition(http, {
    entityType: 'DestinyClassDefinition',
    hashIdentifier: 671679327,
  }),
  component: await getDestinyManifestComponent(http, {
    destinyManifest: manifest,
    tableName: 'DestinyInventoryItemDefinition',
    language: 'en',
  }),
  slice: await getDestinyManifestSlice(http, {
    destinyManifest: manifest,
    tableNames: ['DestinyClassDefinition', 'DestinyStatDefinition'],
    language: 'fr',
  }),
  all: await getAllDestinyManifestComponents(http, { destinyManifest: manifest, language: 'en' }),
  requested,
};
writeFileSync(output, JSON.stringify(results));
