using DiffusionFunctional.Core;

using DiffusionFunctional.Experiments.Demo;

namespace DiffusionFunctional.Experiments.Reproduce;

/// <summary>One evaluation point of a method over the seeds that reached it: mean and sample standard deviation.</summary>
/// <param name="Step">Training steps.</param>
/// <param name="FdMean">Mean FD-ResNet18.</param>
/// <param name="FdStd">Its standard deviation over seeds (0 for one seed).</param>
/// <param name="KidMean">Mean KID.</param>
/// <param name="KidStd">Its standard deviation over seeds.</param>
/// <param name="Seeds">Seeds scored at this step.</param>
/// <param name="Samples">Generated images per seed at this step.</param>
/// <param name="CurveFdMean">Mean FD on the curve's sample count (<see cref="DemoRecord.FdAt"/>): <paramref name="FdMean"/>
/// at points scored with it, the FD of the first images at a final point scored with more; NaN if not measured.</param>
/// <param name="CurveFdStd">Its standard deviation over seeds.</param>
public sealed record CurvePoint(long Step, double FdMean, double FdStd, double KidMean, double KidStd, int Seeds, int Samples,
    double CurveFdMean, double CurveFdStd);

/// <summary>A method's convergence: its curve, final values and comparisons.</summary>
/// <param name="Id">Folder-safe id (<c>uw-snr-k5</c>).</param>
/// <param name="Spec">As written (<c>uw:snr:5</c>).</param>
/// <param name="Curve">Mean and spread at each evaluation point.</param>
/// <param name="FinalFd">Final FD per seed that finished (seed order).</param>
/// <param name="FinalKid">Final KID per seed that finished.</param>
/// <param name="FinalKidStandardError">KID's subset spread per seed at the final point.</param>
/// <param name="FinalFdOnCurveSamples">Final FD per seed scored on the curve's sample count (the first images of the
/// final point's set when it was scored with more; <see cref="DemoRecord.FdAt"/>): vanilla's is the target of
/// <paramref name="StepsToVanillaFinal"/>.</param>
/// <param name="StepsToVanillaFinal">Per seed: the step where the method's FD first reached vanilla's final FD of that
/// seed, both scored on the curve's sample count, interpolated log-linearly (NaN: never).</param>
/// <param name="StepsToVanillaSummary">Mean and spread of those steps over the seeds that got there.</param>
/// <param name="FdVersusVanilla">Paired comparison of final FD against vanilla's (same seeds).</param>
/// <param name="KidVersusVanilla">Paired comparison of final KID against vanilla's.</param>
/// <param name="FdVersusMinSnr">Paired comparison of final FD against Min-SNR's.</param>
/// <param name="KidVersusMinSnr">Paired comparison of final KID against Min-SNR's.</param>
/// <param name="DivergedSeeds">Seeds whose training diverged (a result, not hidden).</param>
/// <param name="StepSeconds">Mean wall time of a training step.</param>
public sealed record MethodResult(
    string Id, string Spec, IReadOnlyList<CurvePoint> Curve, double[] FinalFd, double[] FinalKid, double[] FinalKidStandardError,
    double[] FinalFdOnCurveSamples, double[] StepsToVanillaFinal, StepsAcrossSeeds StepsToVanillaSummary,
    PairedComparisonSummary FdVersusVanilla, PairedComparisonSummary KidVersusVanilla,
    PairedComparisonSummary FdVersusMinSnr, PairedComparisonSummary KidVersusMinSnr,
    IReadOnlyList<long> DivergedSeeds, double StepSeconds);

/// <summary>O1 at one checkpoint step over seeds.</summary>
/// <param name="Step">Training steps of the vanilla checkpoints.</param>
/// <param name="Rho">Spearman's rho per seed.</param>
/// <param name="PValue">Its p-value per seed.</param>
/// <param name="RhoMean">Mean rho over seeds.</param>
/// <param name="RhoStd">Standard deviation of rho over seeds.</param>
/// <param name="BinCentres">Centres of the |delta log-SNR| bins.</param>
/// <param name="BinMeans">Mean affinity per bin, averaged over seeds.</param>
/// <param name="CsvPaths">The matrices, one per seed.</param>
public sealed record AffinityStage(long Step, double[] Rho, double[] PValue, double RhoMean, double RhoStd, double[] BinCentres, double[] BinMeans, string[] CsvPaths);

/// <summary>O2 for one shared model over seeds.</summary>
/// <param name="Method">The shared model's method id.</param>
/// <param name="Starts">First timestep of each interval.</param>
/// <param name="Ends">One past the last timestep of each interval.</param>
/// <param name="GapMean">Mean NTG per interval over seeds.</param>
/// <param name="GapStd">Its standard deviation over seeds (0 for one seed).</param>
/// <param name="FdSharedMean">Mean FD of the shared model alone.</param>
/// <param name="Seeds">Seeds measured.</param>
public sealed record NtgSummary(string Method, int[] Starts, int[] Ends, double[] GapMean, double[] GapStd, double FdSharedMean, int Seeds);

/// <summary>One of the paper's claims: what the paper reports, what we measured, and a one-line verdict derived from the numbers.</summary>
/// <param name="Claim">The claim in words.</param>
/// <param name="Paper">The paper's figure.</param>
/// <param name="Ours">Our figure.</param>
/// <param name="Verdict">"reproduced", "partly" or "not reproduced", with the reason.</param>
public sealed record ClaimVerdict(string Claim, string Paper, string Ours, string Verdict);

/// <summary>Everything the reproduce report shows and report.json holds.</summary>
/// <param name="Profile">The profile's name.</param>
/// <param name="Seeds">Seeds asked for.</param>
/// <param name="Complete">Every part finished for every seed (a stopped run reports what it has).</param>
/// <param name="ComparedStep">The step the convergence figures compare at (the final step once every run got there).</param>
/// <param name="Methods">One result per method, vanilla first.</param>
/// <param name="Floors">Real-vs-real floors by sample count.</param>
/// <param name="Plateau">Whether vanilla's curve flattened (the criterion and what was measured).</param>
/// <param name="Affinity">O1 per checkpoint step.</param>
/// <param name="Ntg">O2 per shared model.</param>
/// <param name="Claims">The claims with their verdicts.</param>
/// <param name="Mechanism">Each final model's held-out loss per interval and its FD under DDIM and DDPM.</param>
/// <param name="ObservationsOff">The run was told not to measure O1 and O2.</param>
public sealed record ReproduceSummary(
    string Profile, int Seeds, bool Complete, long ComparedStep, IReadOnlyList<MethodResult> Methods, IReadOnlyList<FloorRecord> Floors,
    PlateauCheck Plateau, IReadOnlyList<AffinityStage> Affinity, IReadOnlyList<NtgSummary> Ntg, IReadOnlyList<ClaimVerdict> Claims,
    IReadOnlyList<MechanismRecord>? Mechanism = null, bool ObservationsOff = false)
{
    /// <summary>What an observation (O1, O2) with nothing recorded says: not yet, or not in this run.</summary>
    public string Unmeasured() => ObservationsOff ? "not measured: the run had --no-observations" : "not measured yet";
}
