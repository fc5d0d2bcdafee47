/**
 * Composition root: reads the boot config and starts every module in order. No logic of its own.
 *
 * Order matters where one module announces its initial state to another: uploads listens before
 * settings announces the model; every listener is in place before the socket connects and the
 * server sends its snapshot.
 * @module main
 */
import { initApiAccess } from "./restapi.js";
import { initChat } from "./chat.js";
import { initComposer } from "./composer.js";
import { initDemucs } from "./demucs.js";
import { readJsonScript } from "./dom.js";
import { initI18n } from "./i18n.js";
import { initLibrary } from "./library.js";
import { initNotify } from "./notify.js";
import { initPlayer } from "./player.js";
import { initQueue } from "./queue.js";
import { initRestore } from "./restore.js";
import { initSettings } from "./settings.js";
import { initSocket } from "./socket.js";
import { initStems } from "./stems.js";
import { initTheme } from "./theme.js";
import { initTracks } from "./tracks.js";
import { initUploads } from "./uploads.js";

async function start() {
  const root = document.body;
  const boot = readJsonScript("boot");
  initTheme(root);
  await initI18n(root);
  initNotify(root, boot);
  initUploads(root);
  initSettings(root, boot);
  initQueue(root);
  initTracks(root);
  initPlayer(root);
  initStems(root, boot);
  initDemucs(root);
  initComposer(root, boot);
  initRestore();
  initLibrary(root, boot);
  initApiAccess(root);
  await initChat(root);
  initSocket();
  document.documentElement.dataset.ready = "true";
}

start();
