#!/usr/bin/env node
// Runs the TypeScript CLI through tsx's loader (a dependency of the project).
import { register } from "tsx/esm/api";

register();
await import("../src/main.ts");
