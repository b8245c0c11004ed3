/** What a registry is given to log in: a user name and password, or an identity (refresh) token. */
export type Credential = {username: string; password: string} | {identityToken: string}
