// Every GraphQL operation the dashboard sends. Types are generated into src/gql/
// by `npm run codegen` from ../schema.graphql.
import { graphql } from '../gql';

export const MeQuery = graphql(`
  query Me {
    me {
      id
      name
      isAdmin
      role
      tenantId
      isSuperuser
      tokenScope
    }
  }
`);

export const JobRowFragment = graphql(`
  fragment JobRow on Job {
    id
    kind
    queue
    status
    priority
    progress
    progressMessage
    attempt
    maxAttempts
    createdAt
    runAt
    nextRunAt
    startedAt
    finishedAt
  }
`);

export const JobsQuery = graphql(`
  query Jobs($filter: JobFilter, $first: Int, $after: String) {
    jobs(filter: $filter, first: $first, after: $after) {
      totalCount(atMost: 10000)
      pageInfo {
        hasNextPage
        endCursor
      }
      edges {
        cursor
        node {
          ...JobRow
        }
      }
    }
  }
`);

export const JobKindsQuery = graphql(`
  query JobKinds {
    jobKinds {
      name
      queue
      description
      inputSchema
      maxAttempts
      timeoutSeconds
    }
  }
`);

export const JobEventFieldsFragment = graphql(`
  fragment JobEventFields on JobEvent {
    seq
    type
    status
    progress
    message
    data
    at
  }
`);

export const JobDetailQuery = graphql(`
  query JobDetail($id: ID!) {
    job(id: $id) {
      ...JobRow
      payload
      result
      error {
        type
        message
      }
      timeoutSeconds
      deduplicated
      queueServed
      attempts {
        number
        status
        workerId
        startedAt
        finishedAt
        error {
          type
          message
        }
      }
    }
  }
`);

export const JobEventsHistoryQuery = graphql(`
  query JobEventsHistory($id: ID!, $after: Int!, $first: Int!) {
    job(id: $id) {
      id
      events(after: $after, first: $first) {
        ...JobEventFields
      }
    }
  }
`);

export const JobEventsSubscription = graphql(`
  subscription JobEvents($jobId: ID!, $after: Int) {
    jobEvents(jobId: $jobId, after: $after) {
      ...JobEventFields
    }
  }
`);

export const JobUpdatesSubscription = graphql(`
  subscription JobUpdates($filter: JobFilter) {
    jobUpdates(filter: $filter) {
      jobId
      seq
      type
      kind
      queue
      status
      progress
      progressMessage
      attempt
      at
    }
  }
`);

export const SubmitJobMutation = graphql(`
  mutation SubmitJob($input: SubmitJobInput!) {
    submitJob(input: $input) {
      __typename
      ... on Job {
        id
        status
        deduplicated
      }
      ... on UserError {
        message
        code
      }
      ... on InvalidInput {
        fieldErrors {
          path
          message
        }
      }
      ... on UnknownJobKind {
        kind
      }
      ... on Conflict {
        existingJobId
      }
      ... on PolicyDenied {
        rule
        retryAfterSeconds
      }
    }
  }
`);

export const CancelJobMutation = graphql(`
  mutation CancelJob($id: ID!) {
    cancelJob(id: $id) {
      __typename
      ... on Job {
        ...JobRow
      }
      ... on UserError {
        message
        code
      }
    }
  }
`);

export const RetryJobMutation = graphql(`
  mutation RetryJob($id: ID!) {
    retryJob(id: $id) {
      __typename
      ... on Job {
        ...JobRow
      }
      ... on UserError {
        message
        code
      }
      ... on PolicyDenied {
        rule
        retryAfterSeconds
      }
    }
  }
`);

export const CancelJobsMutation = graphql(`
  mutation CancelJobs($filter: JobFilter!) {
    cancelJobs(filter: $filter) {
      count
    }
  }
`);

export const RetryJobsMutation = graphql(`
  mutation RetryJobs($filter: JobFilter!) {
    retryJobs(filter: $filter) {
      count
    }
  }
`);

export const FailedJobsQuery = graphql(`
  query FailedJobs($filter: JobFilter, $first: Int, $after: String) {
    jobs(filter: $filter, first: $first, after: $after) {
      totalCount(atMost: 10000)
      pageInfo {
        hasNextPage
        endCursor
      }
      edges {
        node {
          id
          kind
          queue
          attempt
          maxAttempts
          createdAt
          finishedAt
          error {
            type
            message
          }
        }
      }
    }
  }
`);

export const QueueStatsFieldsFragment = graphql(`
  fragment QueueStatsFields on QueueStats {
    queue
    waiting
    scheduled
    running
    failed
    oldestWaitingSeconds
    completedPerMinute
    failedPerMinute
    paused
    pausedBy
  }
`);

export const QueuesQuery = graphql(`
  query Queues {
    queues {
      ...QueueStatsFields
    }
  }
`);

export const WorkersQuery = graphql(`
  query Workers {
    workers {
      id
      host
      pid
      queues
      concurrency
      startedAt
      lastHeartbeatAt
      runningJobs
    }
  }
`);

export const QueueStatsSubscription = graphql(`
  subscription QueueStats($interval: Float) {
    queueStats(interval: $interval) {
      ...QueueStatsFields
    }
  }
`);

export const AuditLogQuery = graphql(`
  query AuditLog($filter: AuditLogFilter, $first: Int!, $after: String) {
    auditLog(filter: $filter, first: $first, after: $after) {
      pageInfo {
        hasNextPage
        endCursor
      }
      edges {
        cursor
        node {
          id
          at
          actorId
          actorName
          action
          target
          before
          after
          requestId
          clientAddress
        }
      }
    }
  }
`);

export const PolicyDecisionsQuery = graphql(`
  query PolicyDecisions($filter: PolicyDecisionFilter, $first: Int!, $after: String) {
    policyDecisions(filter: $filter, first: $first, after: $after) {
      pageInfo {
        hasNextPage
        endCursor
      }
      edges {
        cursor
        node {
          id
          at
          principalId
          principalName
          action
          jobKind
          jobId
          decision
          rule
          reason
          policyVersion
          requestId
        }
      }
    }
  }
`);

// Schedules and flow control (ADR-0022).
export const JobWaitingReasonQuery = graphql(`
  query JobWaitingReason($id: ID!) {
    job(id: $id) {
      id
      status
      scheduleId
      fireAt
      waitingReason {
        code
        message
        until
        scope
        limit
        running
        holders
        ahead
        aheadExact
      }
    }
  }
`);

export const ScheduleFieldsFragment = graphql(`
  fragment ScheduleFields on Schedule {
    id
    name
    kind
    input
    cron
    everySeconds
    timezone
    misfire
    source
    paused
    pausedAt
    pausedBy
    nextFireAt
    lastFireAt
    skippedFires
    nextFireTimes(count: 3)
    recentFires {
      fireAt
      lagSeconds
      manual
      jobId
      jobStatus
      error
    }
  }
`);

export const SchedulesQuery = graphql(`
  query Schedules {
    schedules {
      ...ScheduleFields
    }
  }
`);

export const CreateScheduleMutation = graphql(`
  mutation CreateSchedule($input: CreateScheduleInput!) {
    createSchedule(input: $input) {
      __typename
      ... on Schedule {
        ...ScheduleFields
      }
      ... on UserError {
        message
        code
      }
      ... on InvalidInput {
        fieldErrors {
          path
          message
        }
      }
    }
  }
`);

export const PauseScheduleMutation = graphql(`
  mutation PauseSchedule($id: ID!) {
    pauseSchedule(id: $id) {
      __typename
      ... on Schedule {
        ...ScheduleFields
      }
      ... on UserError {
        message
      }
    }
  }
`);

export const ResumeScheduleMutation = graphql(`
  mutation ResumeSchedule($id: ID!) {
    resumeSchedule(id: $id) {
      __typename
      ... on Schedule {
        ...ScheduleFields
      }
      ... on UserError {
        message
      }
    }
  }
`);

export const TriggerScheduleMutation = graphql(`
  mutation TriggerSchedule($id: ID!) {
    triggerSchedule(id: $id) {
      __typename
      ... on Job {
        id
      }
      ... on UserError {
        message
      }
    }
  }
`);

export const DeleteScheduleMutation = graphql(`
  mutation DeleteSchedule($id: ID!) {
    deleteSchedule(id: $id) {
      __typename
      ... on UserError {
        message
      }
    }
  }
`);

export const PauseQueueMutation = graphql(`
  mutation PauseQueue($queue: String!) {
    pauseQueue(queue: $queue) {
      __typename
      ... on QueuePause {
        queue
        paused
      }
      ... on UserError {
        message
      }
    }
  }
`);

export const ResumeQueueMutation = graphql(`
  mutation ResumeQueue($queue: String!) {
    resumeQueue(queue: $queue) {
      __typename
      ... on QueuePause {
        queue
        paused
      }
      ... on UserError {
        message
      }
    }
  }
`);

// Workflows (ADR-0023).
export const WorkflowRunsQuery = graphql(`
  query WorkflowRuns($after: String) {
    workflowRuns(first: 50, after: $after) {
      edges {
        cursor
        node {
          id
          workflow
          status
          progress
          createdAt
          finishedAt
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

export const WorkflowRunQuery = graphql(`
  query WorkflowRun($id: ID!) {
    workflowRun(id: $id) {
      id
      workflow
      status
      progress
      generation
      lastSeq
      input
      createdAt
      finishedAt
      error {
        type
        message
      }
      steps {
        id
        key
        kind
        isMap
        status
        expected
        succeeded
        failed
        error {
          type
          message
        }
        job {
          id
          status
        }
        counts {
          status
          count
        }
      }
    }
    workflows {
      name
      edges {
        from
        to
      }
    }
  }
`);

export const StepJobsQuery = graphql(`
  query StepJobs($id: ID!, $status: [JobStatus!]) {
    workflowRun(id: $id) {
      id
      steps {
        id
        key
        jobs(status: $status, first: 200) {
          id
          status
          mapIndex
          attempt
        }
      }
    }
  }
`);

export const WorkflowEventsSubscription = graphql(`
  subscription WorkflowEvents($runId: ID!, $after: Int) {
    workflowEvents(runId: $runId, after: $after) {
      seq
      type
      status
      step
      stepStatus
    }
  }
`);

export const CancelWorkflowRunMutation = graphql(`
  mutation CancelWorkflowRun($id: ID!) {
    cancelWorkflowRun(id: $id) {
      __typename
      ... on WorkflowRun {
        id
        status
      }
      ... on UserError {
        code
        message
      }
    }
  }
`);

export const RetryWorkflowRunMutation = graphql(`
  mutation RetryWorkflowRun($id: ID!) {
    retryWorkflowRun(id: $id) {
      __typename
      ... on WorkflowRun {
        id
        status
      }
      ... on UserError {
        code
        message
      }
    }
  }
`);
