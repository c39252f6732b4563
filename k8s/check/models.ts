// The Kubernetes kinds the manifests may contain, each with its model from the
// npm package kubernetes-models (generated from the Kubernetes OpenAPI
// schemas): its validate() checks types, required fields, enums and formats,
// and its TypeScript declaration (KindTypes below) lists every field a kind
// and its nested objects may have, which unknown-fields.ts walks.
import { Deployment, StatefulSet, type IDeployment, type IStatefulSet } from "kubernetes-models/apps/v1";
import { HorizontalPodAutoscaler, type IHorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import { Job, type IJob } from "kubernetes-models/batch/v1";
import { NetworkPolicy, type INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { PodDisruptionBudget, type IPodDisruptionBudget } from "kubernetes-models/policy/v1";
import {
  ConfigMap,
  Namespace,
  PersistentVolumeClaim,
  Secret,
  Service,
  ServiceAccount,
  type IConfigMap,
  type INamespace,
  type IPersistentVolumeClaim,
  type ISecret,
  type IService,
  type IServiceAccount,
} from "kubernetes-models/v1";

/** The declared shape of each allowed kind, by `apiVersion/kind`. */
export interface KindTypes {
  "v1/Namespace": INamespace;
  "v1/ConfigMap": IConfigMap;
  "v1/Secret": ISecret;
  "v1/Service": IService;
  "v1/ServiceAccount": IServiceAccount;
  "v1/PersistentVolumeClaim": IPersistentVolumeClaim;
  "apps/v1/Deployment": IDeployment;
  "apps/v1/StatefulSet": IStatefulSet;
  "batch/v1/Job": IJob;
  "policy/v1/PodDisruptionBudget": IPodDisruptionBudget;
  "autoscaling/v2/HorizontalPodAutoscaler": IHorizontalPodAutoscaler;
  "networking.k8s.io/v1/NetworkPolicy": INetworkPolicy;
}

export type KindKey = keyof KindTypes;

type ModelClass = new (data: never) => { validate(): void };

export const MODELS: Record<KindKey, ModelClass> = {
  "v1/Namespace": Namespace,
  "v1/ConfigMap": ConfigMap,
  "v1/Secret": Secret,
  "v1/Service": Service,
  "v1/ServiceAccount": ServiceAccount,
  "v1/PersistentVolumeClaim": PersistentVolumeClaim,
  "apps/v1/Deployment": Deployment,
  "apps/v1/StatefulSet": StatefulSet,
  "batch/v1/Job": Job,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "autoscaling/v2/HorizontalPodAutoscaler": HorizontalPodAutoscaler,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
};

export const kindKeyOf = (o: { apiVersion?: unknown; kind?: unknown }): string => `${String(o.apiVersion)}/${String(o.kind)}`;

export const isKnownKind = (key: string): key is KindKey => Object.hasOwn(MODELS, key);
