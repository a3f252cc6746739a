/** Fixed identifiers of the emulated tenant, subscription and managed identity. */
export const DEMO_TENANT_ID = '00000000-0000-4000-8000-00000000a2db';
export const DEMO_SUBSCRIPTION_ID = '11111111-2222-3333-4444-555555555555';
export const DEMO_RESOURCE_GROUP = 'azdb-demo';
/**
 * The managed identity the demo runs as, and the database role made for it. It is also the
 * emulated servers' Microsoft Entra admin (as when a VM's identity is made the admin), so
 * `azdb setup` can create further database users on them, as the guide's step 3 does.
 */
export const DEMO_IDENTITY = {
  clientId: '0b6c3a5e-7f1d-4c2a-9e8b-1d2c3b4a5f60',
  objectId: '5d1e0f7a-3b2c-4d8e-9f10-a1b2c3d4e5f6',
  role: 'azdb-demo',
} as const;

/** The demo identity as a database principal of every emulated server: a service, and the Entra admin. */
export const DEMO_PRINCIPAL = { role: DEMO_IDENTITY.role, objectId: DEMO_IDENTITY.objectId, type: 'service', isAdmin: true } as const;
/** The same principal as `CREATE AADUSER` makes it on the MySQL servers. */
export const DEMO_AAD_USER = { user: DEMO_IDENTITY.role, identifiedBy: DEMO_IDENTITY.objectId, type: 'service', isAdmin: true } as const;
