// npm run k8s:gen — writes the copies kustomize reads from k8s/ (see generated-files.ts).
import { writeGeneratedFiles } from "./generated-files.js";

for (const path of writeGeneratedFiles()) console.log(`wrote k8s/${path}`);
