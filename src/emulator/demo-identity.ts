/** Fixed identifiers of the emulated tenant, subscription and managed identity. */
export const DEMO_TENANT_ID = '00000000-0000-4000-8000-00000000a2db';
export const DEMO_SUBSCRIPTION_ID = '11111111-2222-3333-4444-555555555555';
export const DEMO_RESOURCE_GROUP = 'azdb-demo';
/** The managed identity the demo runs as, and the database role made for it. */
export const DEMO_IDENTITY = {
  clientId: '0b6c3a5e-7f1d-4c2a-9e8b-1d2c3b4a5f60',
  objectId: '5d1e0f7a-3b2c-4d8e-9f10-a1b2c3d4e5f6',
  role: 'azdb-demo',
} as const;
