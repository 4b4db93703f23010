// The browser SDK: `import { RoomClient } from '/sdk/index.js'`. See docs/sdk.md.
export { RoomClient, defaultUrl } from './client.js';
export { SdkError } from './errors.js';
export { summarizeStats, qualityOf } from './stats.js';
export { tokenPermissions } from './token.js';
