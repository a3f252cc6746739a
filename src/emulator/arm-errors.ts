/**
 * Azure Resource Manager's error responses, as the gateway sends them:
 * `{"error":{"code","message"}}` with the status, and `WWW-Authenticate` on 401s. Pure.
 */
import type { TokenRejectionReason } from './entra.js';

export interface ArmError {
  status: number;
  headers: Record<string, string>;
  body: { error: { code: string; message: string } };
}

/** Audiences ARM accepts, in the order its error message lists them. */
export const ARM_AUDIENCES = [
  'https://management.core.windows.net/',
  'https://management.core.windows.net',
  'https://management.azure.com/',
  'https://management.azure.com',
];

function armError(status: number, code: string, message: string, headers: Record<string, string> = {}): ArmError {
  return { status, headers, body: { error: { code, message } } };
}

function unauthorized(code: string, message: string, authorizationUri: string, description: string): ArmError {
  return armError(401, code, message, {
    'WWW-Authenticate': `Bearer authorization_uri="${authorizationUri}", error="invalid_token", error_description="${description}"`,
  });
}

export function missingAuthorization(): ArmError {
  return unauthorized(
    'AuthenticationFailed',
    "Authentication failed. The 'Authorization' header is missing.",
    'https://login.windows.net/',
    "The authentication failed because of missing 'Authorization' header.",
  );
}

export function malformedAuthorization(): ArmError {
  return unauthorized(
    'AuthenticationFailed',
    "Authentication failed. The 'Authorization' header is provided in an invalid format.",
    'https://login.windows.net/',
    "The authentication failed because of malformed 'Authorization' header.",
  );
}

export interface RejectedTokenFacts {
  reason: TokenRejectionReason;
  tenantId: string;
  /** Claims read (unverified) from the token, for the message. */
  aud?: unknown;
  iss?: unknown;
  exp?: unknown;
  nbf?: unknown;
}

export function invalidToken(facts: RejectedTokenFacts): ArmError {
  const authorizationUri = `https://login.windows.net/${facts.tenantId}`;
  const invalid = (code: string, message: string) => unauthorized(code, message, authorizationUri, 'The access token is invalid.');
  switch (facts.reason) {
    case 'audience':
      return invalid(
        'InvalidAuthenticationTokenAudience',
        `The access token has been obtained for wrong audience or resource '${String(facts.aud)}'. It should exactly match ` +
          `with one of the allowed audiences ${ARM_AUDIENCES.map((audience) => `'${audience}'`).join(',')}.`,
      );
    case 'expired':
      return unauthorized(
        'ExpiredAuthenticationToken',
        `The access token expiry UTC time '${dotNetUtc(facts.exp)}' is earlier than current UTC time '${dotNetUtc(Date.now() / 1000)}'.`,
        authorizationUri,
        'The access token expiry UTC time is earlier than current UTC time.',
      );
    case 'issuer':
      return invalid(
        'InvalidAuthenticationTokenTenant',
        `The access token is from the wrong issuer '${String(facts.iss)}'. It must match the tenant ` +
          `'https://sts.windows.net/${facts.tenantId}/' associated with this subscription. Please use the authority (URL) ` +
          `'https://login.windows.net/${facts.tenantId}' to get the token. Note, if the subscription is transferred to another ` +
          'tenant there is no impact to the services, but information about new tenant could take time to propagate (up to an hour). ' +
          'If you just transferred your subscription and see this error message, please try back later.',
      );
    case 'not-yet-valid':
      return invalid('InvalidAuthenticationToken', `The access token is not valid before UTC time '${dotNetUtc(facts.nbf)}'.`);
    case 'malformed':
    case 'signature':
      return invalid('InvalidAuthenticationToken', 'The access token is invalid.');
  }
}

export function missingApiVersion(): ArmError {
  return armError(400, 'MissingApiVersionParameter', "The api-version query parameter (?api-version=) is required for all requests.");
}

export function authorizationFailed(client: string, objectId: string, action: string, scope: string): ArmError {
  return armError(
    403,
    'AuthorizationFailed',
    `The client '${client}' with object id '${objectId}' does not have authorization to perform action '${action}' ` +
      `over scope '${scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.`,
    { 'x-ms-failure-cause': 'gateway' },
  );
}

export function throttled(scope: { subscriptionId: string } | { tenantId: string }, actor: string, retryAfterSeconds: number): ArmError {
  const [kind, code, id] =
    'subscriptionId' in scope
      ? (['subscription', 'SubscriptionRequestsThrottled', scope.subscriptionId] as const)
      : (['tenant', 'TenantRequestsThrottled', scope.tenantId] as const);
  return armError(
    429,
    code,
    `Number of 'read' requests for ${kind} '${id}' actor '${actor}' exceeded. Please try again after ` +
      `'${retryAfterSeconds}' seconds after additional tips: The throttling is only applicable to 'read' requests. ` +
      'For more information, see https://aka.ms/armthrottling.',
    { 'Retry-After': String(retryAfterSeconds) },
  );
}

export function subscriptionNotFound(subscriptionId: string): ArmError {
  return armError(404, 'SubscriptionNotFound', `The subscription '${subscriptionId}' could not be found.`);
}

export function resourceGroupNotFound(resourceGroup: string): ArmError {
  return armError(404, 'ResourceGroupNotFound', `Resource group '${resourceGroup}' could not be found.`);
}

export function resourceNotFound(type: string, name: string): ArmError {
  return armError(404, 'ResourceNotFound', `The Resource '${type}/${name}' under resource group was not found.`);
}

export function invalidResourceType(namespace: string, type: string, apiVersion: string): ArmError {
  return armError(
    404,
    'InvalidResourceType',
    `The resource type '${type}' could not be found in the namespace '${namespace}' for api version '${apiVersion}'.`,
  );
}

export function invalidSkipToken(): ArmError {
  return armError(400, 'InvalidSkipToken', 'The provided $skipToken is invalid.');
}

export function notFound(path: string): ArmError {
  return armError(404, 'NotFound', `No route matches '${path}'.`);
}

export function methodNotAllowed(method: string): ArmError {
  return armError(405, 'MethodNotAllowed', `The requested resource does not support http method '${method}'.`);
}

/** .NET's invariant `G` UTC format that ARM messages use: `11/25/2026 5:17:19 AM`. */
function dotNetUtc(epochSeconds: unknown): string {
  if (typeof epochSeconds !== 'number') return 'unknown';
  const date = new Date(epochSeconds * 1000);
  const hours = date.getUTCHours();
  const pad = (value: number) => String(value).padStart(2, '0');
  return (
    `${date.getUTCMonth() + 1}/${date.getUTCDate()}/${date.getUTCFullYear()} ` +
    `${hours % 12 || 12}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} ${hours < 12 ? 'AM' : 'PM'}`
  );
}
